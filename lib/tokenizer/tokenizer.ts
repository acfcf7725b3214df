import type { GGUFFile } from '../gguf/types.js';
export class Tokenizer {
  static fromGGUF(_gguf: GGUFFile): Tokenizer {
    throw new Error('not implemented yet');
  }
}
