import { PaliGemmaError } from '../errors.js';
import type { FileErrorFactory } from '../files.js';

/** Why a GGUF file was rejected (or why the writer refused its input). */
export type GGUFErrorCode =
  /** The file could not be opened, read or written. */
  | 'IO'
  /** The path is a directory, a FIFO, a device or a socket, or a URL that is not a `file:` URL. */
  | 'NOT_A_FILE'
  /** The first four bytes are not `GGUF`. */
  | 'BAD_MAGIC'
  /** Version other than 2 or 3 (v1 used 32-bit counts; a big-endian file shows a byte-swapped version). */
  | 'UNSUPPORTED_VERSION'
  /** The file ends inside a fixed-size header field. */
  | 'TRUNCATED'
  /** The KV or tensor count cannot fit in the bytes left in the file. */
  | 'COUNT_TOO_LARGE'
  /** A string or array length runs past the end of the file. */
  | 'LENGTH_PAST_END'
  | 'UNKNOWN_VALUE_TYPE'
  | 'UNKNOWN_TENSOR_TYPE'
  | 'INVALID_UTF8'
  /** A value that is not valid for its type (a bool byte other than 0 or 1). */
  | 'INVALID_VALUE'
  | 'DUPLICATE_KEY'
  | 'DUPLICATE_TENSOR'
  /** n_dims outside 1..4, a dim of 0 or ≥ 2^63, an element count ≥ 2^53, or rows not a whole number of blocks. */
  | 'BAD_DIMS'
  /** `general.alignment` is not a non-zero power of two stored as u32. */
  | 'BAD_ALIGNMENT'
  | 'MISALIGNED_OFFSET'
  | 'TENSOR_OUT_OF_BOUNDS'
  /** Two tensors' data regions share bytes. */
  | 'TENSOR_OVERLAP'
  /** A safety limit of the reader (header size, array items, array nesting depth) was exceeded. */
  | 'LIMIT_EXCEEDED'
  /** A metadata key asked for by an accessor is absent. */
  | 'MISSING_KEY'
  /** A metadata value has another type than the accessor asked for. */
  | 'WRONG_TYPE'
  /** The writer was given data it cannot write (type mismatch, bad dims, wrong byte count…). */
  | 'INVALID_INPUT';

/** A typed error for anything wrong with a GGUF file (or with data given to the writer). */
export class GGUFError extends PaliGemmaError<GGUFErrorCode> {
  override name = 'GGUFError';
  constructor(
    code: GGUFErrorCode,
    message: string,
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(code, path ? `${path}: ${message}` : message, options);
  }
}

/** GGUFErrors for the file helpers of lib/files.ts (NOT_A_FILE, or IO for everything else). */
export const ggufFileError: FileErrorFactory = (problem, message, path, cause) =>
  new GGUFError(problem === 'NOT_A_FILE' ? 'NOT_A_FILE' : 'IO', message, path, { cause });
