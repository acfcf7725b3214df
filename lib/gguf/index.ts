export * from './types.js';
export { GGUFError } from './errors.js';
export type { GGUFErrorCode } from './errors.js';
export { readGGUF, GGUF_DEFAULT_ALIGNMENT, GGUF_MAX_DIMS } from './reader.js';
export type { ReadGGUFOptions } from './reader.js';
export { writeGGUF } from './writer.js';
export { GGML_TYPES, ggmlTypeById, isQuantizedType, LLAMA_FILE_TYPE, GGML_QUANTIZATION_VERSION } from './ggml-types.js';
export type { GGMLTypeInfo } from './ggml-types.js';
export {
  getValue,
  getString,
  getBool,
  getNumber,
  getInteger,
  getBigInt,
  getArray,
  getOptionalString,
  getOptionalBool,
  getOptionalNumber,
  getOptionalInteger,
  getOptionalArray,
  describeValueType,
} from './metadata.js';
export type { GGUFMetadataSource, GGUFArrayOf } from './metadata.js';
