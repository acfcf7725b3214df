import { PaliGemmaError } from '../errors.js';
/** Why a model could not be quantized. */
export type QuantizeErrorCode =
  /** A bad option: unknown type, output path equal to the input. */
  | 'BAD_OPTION'
  /** The file is neither a PaliGemma text model (`gemma`) nor a projector (`clip`). */
  | 'UNSUPPORTED_MODEL'
  /** A tensor to quantize is not F32, F16 or BF16 (already quantized: start from the F16 file). */
  | 'UNSUPPORTED_TENSOR_TYPE'
  /** A weight holds NaN or infinity. */
  | 'NON_FINITE'
  /** A block's values are too large for the type (its F16 scale would overflow). */
  | 'OUT_OF_RANGE'
  | 'IO';

/** A typed error for a model that cannot be quantized; the message names the tensor and row at fault. */
export class QuantizeError extends PaliGemmaError<QuantizeErrorCode> {
  override name = 'QuantizeError';
  constructor(
    code: QuantizeErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(code, path ? `${path}: ${message}` : message);
  }
}
