export * from './types.js';
export { GGUFError } from './errors.js';
export type { GGUFErrorCode } from './errors.js';
export { readGGUF } from './reader.js';
export { writeGGUF } from './writer.js';
