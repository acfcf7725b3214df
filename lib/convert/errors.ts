import { PaliGemmaError } from '../errors.js';
import type { FileErrorFactory } from '../files.js';

/** Why a safetensors file or checkpoint index was rejected. */
export type SafetensorsErrorCode =
  | 'IO'
  /** The path is a directory, a FIFO, a device or a socket. */
  | 'NOT_A_FILE'
  | 'TRUNCATED'
  | 'HEADER_TOO_LARGE'
  | 'BAD_HEADER'
  | 'UNSUPPORTED_DTYPE'
  | 'BAD_SHAPE'
  | 'BAD_OFFSETS'
  | 'OVERLAP'
  | 'BAD_INDEX'
  | 'DUPLICATE_TENSOR'
  | 'MISSING_TENSOR';

/** A typed error for anything wrong with a safetensors file or a sharded checkpoint's index. */
export class SafetensorsError extends PaliGemmaError<SafetensorsErrorCode> {
  override name = 'SafetensorsError';
  constructor(
    code: SafetensorsErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(code, path ? `${path}: ${message}` : message);
  }
}

/** Why a Hugging Face checkpoint could not be converted. */
export type ConvertErrorCode =
  | 'IO'
  /** The path is a directory, a FIFO, a device or a socket. */
  | 'NOT_A_FILE'
  | 'MISSING_FILE'
  | 'BAD_CONFIG'
  | 'UNSUPPORTED'
  | 'SHAPE_MISMATCH'
  | 'MISSING_TENSOR'
  | 'UNEXPECTED_TENSOR'
  | 'BAD_TOKENIZER'
  | 'BAD_OPTION';

/** A typed error for a checkpoint that is incomplete, inconsistent or not a PaliGemma checkpoint. */
export class ConvertError extends PaliGemmaError<ConvertErrorCode> {
  override name = 'ConvertError';
  constructor(
    code: ConvertErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(code, path ? `${path}: ${message}` : message);
  }
}

/** SafetensorsErrors for the file helpers of lib/files.ts; `tooLarge` is the code for a file over the caller's limit. */
export function safetensorsFileError(tooLarge: SafetensorsErrorCode = 'IO'): FileErrorFactory {
  return (problem, message, file) => new SafetensorsError(problem === 'TOO_LARGE' ? tooLarge : problem, message, file);
}

/** ConvertErrors for the file helpers of lib/files.ts; `tooLarge` is the code for a file over the caller's limit. */
export function convertFileError(tooLarge: ConvertErrorCode): FileErrorFactory {
  return (problem, message, file) => new ConvertError(problem === 'TOO_LARGE' ? tooLarge : problem, message, file);
}
