import { PaliGemmaError } from '../errors.js';

/** Why an image was rejected. */
export type ImageErrorCode =
  /** Zero bytes were given. */
  | 'EMPTY'
  /** The bytes are not an image in a supported format (JPEG, PNG, WebP, GIF, TIFF, AVIF/HEIF). */
  | 'UNSUPPORTED_FORMAT'
  /** The header or pixel data cannot be decoded (truncated, damaged). */
  | 'CORRUPT'
  /** The image has more pixels than the `maxPixels` limit (checked from the header, before decoding). */
  | 'TOO_LARGE'
  /** A raw pixel object is inconsistent: bad width, height or channels, or data of the wrong length. */
  | 'BAD_PIXELS'
  /** The input is neither encoded bytes nor a raw pixel object. */
  | 'BAD_INPUT'
  /** A preprocessing option is invalid (size, mean, std, maxPixels). */
  | 'BAD_OPTION';

/** A typed error for anything wrong with an image or its preprocessing options. */
export class ImageError extends PaliGemmaError<ImageErrorCode> {
  override name = 'ImageError';
}
