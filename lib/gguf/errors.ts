/** Why a GGUF file was rejected. */
export type GGUFErrorCode =
  | 'IO'
  | 'BAD_MAGIC'
  | 'UNSUPPORTED_VERSION'
  | 'TRUNCATED'
  | 'COUNT_TOO_LARGE'
  | 'LENGTH_PAST_END'
  | 'UNKNOWN_VALUE_TYPE'
  | 'UNKNOWN_TENSOR_TYPE'
  | 'INVALID_UTF8'
  | 'DUPLICATE_KEY'
  | 'DUPLICATE_TENSOR'
  | 'BAD_DIMS'
  | 'BAD_ALIGNMENT'
  | 'MISALIGNED_OFFSET'
  | 'TENSOR_OUT_OF_BOUNDS'
  | 'MISSING_KEY'
  | 'WRONG_TYPE'
  | 'INVALID_INPUT';

/** A typed error for anything wrong with a GGUF file (or with data given to the writer). */
export class GGUFError extends Error {
  override name = 'GGUFError';
  constructor(
    readonly code: GGUFErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(path ? `${path}: ${message}` : message);
  }
}
