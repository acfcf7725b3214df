/**
 * Image decoding: encoded bytes (via sharp) or raw pixels → 8-bit RGB, HWC.
 *
 * Choices, relative to the Hugging Face / PIL reference pipeline (`Image.open(...).convert('RGB')`):
 * - EXIF orientation is applied (PIL does not), so a phone photo is seen upright; `width`/`height`
 *   are the size after orientation.
 * - Alpha is composited onto white, as newer transformers' `convert_to_rgb` does (PIL's plain
 *   `convert('RGB')`, which the golden fixture's manifest describes, drops alpha and exposes whatever
 *   colour hides under transparent pixels). The arithmetic equals Pillow's `alpha_composite` over
 *   opaque white: round((c·a + 255·(255 − a)) / 255). The golden images have no alpha.
 * - Embedded ICC profiles of RGB and greyscale images are ignored (pixel values used as stored),
 *   as PIL does; CMYK images are converted to sRGB through their profile (sharp's default CMYK
 *   profile when none is embedded), where PIL uses a naive formula.
 * - 16-bit images are reduced to 8 bits by sharp (v / 257, rounded); PIL keeps the high byte, so
 *   values can differ by one level.
 * - Only the first frame of an animated GIF/WebP, or first page of a TIFF, is used.
 */
import sharp from 'sharp';
import { ImageError } from './errors.js';
import { imageSource, type ImageInput, type RawPixels } from './input.js';

export type { ImageInput, RawPixels };

/**
 * Default cap on decoded pixels (width × height): 100 megapixels, i.e. at most ~400 MB of
 * decoded RGBA. Checked from the header before any pixel is decoded (decompression-bomb guard).
 */
export const DEFAULT_MAX_PIXELS = 100_000_000;

/** A decoded 8-bit RGB image. */
export interface RgbImage {
  /** [height, width, 3], HWC. */
  data: Uint8Array;
  width: number;
  height: number;
}

/** Options for {@link decodeImage}. */
export interface DecodeOptions {
  /** Refuse images with more pixels than this (default {@link DEFAULT_MAX_PIXELS}; `Infinity` disables). */
  maxPixels?: number;
}

/** Encoded formats accepted, by sharp's name. Others sharp reads (SVG, PDF, VIPS…) are not photos and are refused. */
const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);

/**
 * Decodes an image (any {@link ImageInput}: a path, a file: or data: URL, bytes, raw pixels) to 8-bit
 * RGB (see the module comment for orientation, alpha, colour and bit-depth handling). Throws
 * {@link ImageError} for unreadable, empty, unsupported, corrupt or oversized input, or inconsistent
 * raw pixels.
 */
export async function decodeImage(input: ImageInput, options: DecodeOptions = {}): Promise<RgbImage> {
  const maxPixels = checkMaxPixels(options.maxPixels);
  const source = await imageSource(input);
  return source instanceof Uint8Array ? decodeEncoded(source, maxPixels) : fromRawPixels(source, maxPixels);
}

/**
 * Reads an image's header only — no pixel is decoded — and checks it as {@link decodeImage} would
 * begin to: an accepted format, a size, at most `maxPixels` pixels. Returns the stored size (before
 * EXIF orientation). A cheap refusal of what decodeImage would refuse, before any costly work.
 */
export async function probeImage(input: ImageInput, options: DecodeOptions = {}): Promise<{ width: number; height: number }> {
  const maxPixels = checkMaxPixels(options.maxPixels);
  const source = await imageSource(input);
  if (!(source instanceof Uint8Array)) {
    checkPixelCount(source.width, source.height, maxPixels);
    return { width: source.width, height: source.height };
  }
  const { width, height } = await readHeader(source, maxPixels);
  return { width, height };
}

/** Validates a `maxPixels` option, returning the default when it is absent. */
export function checkMaxPixels(maxPixels: number | undefined): number {
  if (maxPixels === undefined) return DEFAULT_MAX_PIXELS;
  if (maxPixels === Infinity || (Number.isSafeInteger(maxPixels) && maxPixels > 0)) return maxPixels;
  throw new ImageError('BAD_OPTION', `maxPixels must be a positive integer or Infinity, got ${maxPixels}`);
}

function checkPixelCount(width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    throw new ImageError(
      'TOO_LARGE',
      `image is ${width}x${height} (${width * height} pixels), more than the limit of ${maxPixels} (option maxPixels)`,
    );
  }
}

/** The header of an encoded image, refused when its format is not accepted or it has more than `maxPixels` pixels. */
async function readHeader(bytes: Uint8Array, maxPixels: number): Promise<sharp.Metadata & { width: number; height: number }> {
  if (bytes.length === 0) throw new ImageError('EMPTY', 'image is empty (0 bytes)');
  let meta: sharp.Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw sharpError(err, 'cannot read the image header');
  }
  if (!meta.format || !ACCEPTED_FORMATS.has(meta.format)) {
    throw new ImageError(
      'UNSUPPORTED_FORMAT',
      `unsupported image format '${meta.format}' (expected JPEG, PNG, WebP, GIF, TIFF or AVIF)`,
    );
  }
  if (!meta.width || !meta.height) throw new ImageError('CORRUPT', 'image header has no size');
  checkPixelCount(meta.width, meta.height, maxPixels);
  return meta as sharp.Metadata & { width: number; height: number };
}

async function decodeEncoded(bytes: Uint8Array, maxPixels: number): Promise<RgbImage> {
  // Header only: refuse oversized images before any pixel is decoded.
  const meta = await readHeader(bytes, maxPixels);
  let decoded: { data: Buffer; info: sharp.OutputInfo };
  try {
    decoded = await sharp(bytes, {
      limitInputPixels: maxPixels === Infinity ? false : maxPixels,
      failOn: 'truncated', // like PIL: reject truncated files, tolerate benign decoder warnings
      ignoreIcc: meta.space !== 'cmyk',
    })
      .autoOrient()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    if (meta.format === 'heif' && meta.compression === 'hevc') {
      // sharp's prebuilt libvips reads AVIF but has no HEVC decoder (HEIC photos).
      const message = 'HEIC (HEVC-compressed HEIF) is not decodable by this build of sharp; convert it to JPEG or AVIF';
      throw new ImageError('UNSUPPORTED_FORMAT', message, { cause: err });
    }
    throw sharpError(err, 'cannot decode the image');
  }
  const { data, info } = decoded;
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.length);
  return { data: toRgb(pixels, info.width, info.height, info.channels), width: info.width, height: info.height };
}

function fromRawPixels(raw: RawPixels, maxPixels: number): RgbImage {
  const { width, height, channels } = raw;
  const data =
    raw.data instanceof Uint8ClampedArray
      ? new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length)
      : raw.data;
  if (!(data instanceof Uint8Array)) throw new ImageError('BAD_PIXELS', 'raw pixels: data must be a Uint8Array');
  for (const [name, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new ImageError('BAD_PIXELS', `raw pixels: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (!Number.isInteger(channels) || channels < 1 || channels > 4) {
    throw new ImageError('BAD_PIXELS', `raw pixels: channels must be 1, 2, 3 or 4, got ${channels}`);
  }
  checkPixelCount(width, height, maxPixels);
  if (data.length !== width * height * channels) {
    throw new ImageError(
      'BAD_PIXELS',
      `raw pixels: data has ${data.length} bytes, expected width*height*channels = ` +
        `${width}*${height}*${channels} = ${width * height * channels}`,
    );
  }
  const rgb = channels === 3 ? data.slice() : toRgb(data, width, height, channels);
  return { data: rgb, width, height };
}

/**
 * Converts interleaved 8-bit pixels with 1..4 channels (grey, grey+alpha, RGB, RGBA) to RGB:
 * grey is replicated, alpha is composited onto white. Returns `data` itself when it is already RGB.
 */
export function toRgb(data: Uint8Array, width: number, height: number, channels: number): Uint8Array {
  if (channels === 3) return data;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  const hasAlpha = channels === 2 || channels === 4;
  const isGrey = channels <= 2;
  for (let i = 0; i < n; i++) {
    const p = i * channels;
    const a = hasAlpha ? data[p + channels - 1]! : 255;
    for (let c = 0; c < 3; c++) {
      const v = data[isGrey ? p : p + c]!;
      out[i * 3 + c] = a === 255 ? v : overWhite(v, a);
    }
  }
  return out;
}

/** One channel value `v` with alpha `a` composited onto white: round((v·a + 255·(255 − a)) / 255). */
function overWhite(v: number, a: number): number {
  // v·a + 255·(255 − a) over 255 is never exactly x.5 (255 is odd), so floor((2t + 255) / 510) rounds it.
  return Math.floor((2 * (v * a + 255 * (255 - a)) + 255) / 510);
}

/** Maps a sharp/libvips error to an ImageError with a stable code. */
function sharpError(err: unknown, what: string): ImageError {
  const message = err instanceof Error ? err.message : String(err);
  const code = /unsupported image format/i.test(message)
    ? 'UNSUPPORTED_FORMAT'
    : /pixel limit/i.test(message)
      ? 'TOO_LARGE'
      : /empty/i.test(message)
        ? 'EMPTY'
        : 'CORRUPT';
  return new ImageError(code, `${what}: ${message}`, { cause: err });
}
