import type { GGUFWriteInput } from './types.js';
import { GGUFError } from './errors.js';
export async function writeGGUF(path: string, _input: GGUFWriteInput): Promise<void> {
  throw new GGUFError('IO', 'not implemented yet', path);
}
