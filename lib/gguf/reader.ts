import type { GGUFFile } from './types.js';
import { GGUFError } from './errors.js';
export async function readGGUF(path: string): Promise<GGUFFile> {
  throw new GGUFError('IO', 'not implemented yet', path);
}
