import { PaliGemmaError } from '../errors.js';

/** Why a safetensors file or checkpoint index was rejected. */
export type SafetensorsErrorCode =
  | 'IO'
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
