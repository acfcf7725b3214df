import { PaliGemmaError } from '../errors.js';

/** Why an image was rejected. */
export type ImageErrorCode =
  /** Zero bytes were given. */
  | 'EMPTY'
  /** The bytes are not an image in a supported format (JPEG, PNG, WebP, GIF, TIFF, AVIF/HEIF). */
  | 'UNSUPPORTED_FORMAT'
  /** The header or pixel data cannot be decoded (truncated, damaged). */
  | 'CORRUPT'
  /** The image has more pixels than the `maxPixels` limit (checked from the header, before decoding), or its file is over 1 GiB. */
  | 'TOO_LARGE'
  /** A raw pixel object is inconsistent: bad width, height or channels, or data of the wrong length. */
  | 'BAD_PIXELS'
  /** The input is none of the accepted forms, or a malformed data: URL. */
  | 'BAD_INPUT'
  /** A path or file: URL names nothing. */
  | 'NOT_FOUND'
  /** A path or file: URL names a directory, a FIFO or a device, not a regular file. */
  | 'NOT_A_FILE'
  /** A path or file: URL cannot be read (permissions, I/O). */
  | 'UNREADABLE'
  /** A URL that is not file: or data: — http(s) images are never downloaded implicitly. */
  | 'UNSUPPORTED_URL'
  /** A preprocessing option is invalid (size, mean, std, maxPixels). */
  | 'BAD_OPTION';

/** A typed error for anything wrong with an image or its preprocessing options. */
export class ImageError extends PaliGemmaError<ImageErrorCode> {
  override name = 'ImageError';
}
