/**
 * Images as people hold them, reduced to the two forms the decoder takes: the bytes of an encoded
 * image, or raw pixels. Paths and `file:` URLs are read (regular files only); `data:` URLs are
 * decoded; binary data of any kind is viewed as bytes without a copy. `http(s):` URLs are refused:
 * downloading is the caller's decision (timeouts, credentials, size limits), never a side effect.
 */
import { fileURLToPath } from 'node:url';

import { ImageError } from './errors.js';
import { isMissingFile, readRegularFile, type FileErrorFactory } from '../files.js';

/** Uncompressed, interleaved 8-bit pixels: `channels` bytes per pixel, rows top to bottom. */
export interface RawPixels {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 1 = grey, 2 = grey + alpha, 3 = RGB, 4 = RGBA. */
  channels: number;
}

/**
 * An image: the encoded bytes of a JPEG, PNG, WebP, GIF, TIFF or AVIF file, given as
 * - a file path, or a `file:` URL (string or `URL`),
 * - a `data:` URL with base64 data (`data:image/png;base64,…`),
 * - a `Buffer`, `Uint8Array`, any other typed array or `DataView` (its bytes), an `ArrayBuffer`, or a `Blob`;
 *
 * or raw pixels `{ data, width, height, channels }`. `http(s):` URLs are refused: fetch the image yourself.
 */
export type ImageInput = string | URL | ArrayBuffer | SharedArrayBuffer | ArrayBufferView | Blob | RawPixels;

/** Largest image file or blob read (1 GiB); the pixel count is limited separately by `maxPixels`. */
export const MAX_IMAGE_BYTES = 1024 * 1024 * 1024;

const ACCEPTED =
  'a file path, a file: or data: URL, a Buffer / typed array / ArrayBuffer / Blob of an encoded image, or raw pixels { data, width, height, channels }';

/** A string that is a URL rather than a path: `scheme://…`, or the schemes without slashes we know. */
const URL_LIKE = /^(?:[a-z][a-z0-9+.-]+:\/\/|data:|file:)/i;

/** The bytes of an encoded image, or raw pixels, from any {@link ImageInput}. Throws {@link ImageError}. */
export async function imageSource(input: ImageInput): Promise<Uint8Array | RawPixels> {
  if (typeof input === 'string') return URL_LIKE.test(input) ? fromUrl(input) : readImageFile(input);
  if (input instanceof URL) return fromUrl(input.href);
  if (ArrayBuffer.isView(input)) return bytesOf(input.buffer, input.byteOffset, input.byteLength);
  if (isArrayBuffer(input)) return bytesOf(input, 0, input.byteLength);
  if (typeof Blob !== 'undefined' && input instanceof Blob) {
    if (input.size > MAX_IMAGE_BYTES) throw new ImageError('TOO_LARGE', `image Blob has ${input.size} bytes, more than the limit of ${MAX_IMAGE_BYTES}`);
    return new Uint8Array(await input.arrayBuffer());
  }
  if (typeof input === 'object' && input !== null && 'data' in input) return input;
  throw new ImageError('BAD_INPUT', `image must be ${ACCEPTED}; got ${describeValue(input)}`);
}

/** ArrayBuffer or SharedArrayBuffer, also from another realm (a vm context, Electron's renderer). */
function isArrayBuffer(v: unknown): v is ArrayBufferLike {
  const tag = Object.prototype.toString.call(v);
  return tag === '[object ArrayBuffer]' || tag === '[object SharedArrayBuffer]';
}

/** A byte view of a buffer region; shared memory is copied, since another thread may change it while it is decoded. */
function bytesOf(buffer: ArrayBufferLike, offset: number, length: number): Uint8Array {
  const view = new Uint8Array(buffer, offset, length);
  return Object.prototype.toString.call(buffer) === '[object SharedArrayBuffer]' ? view.slice() : view;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return (v as object).constructor?.name ? `a ${(v as object).constructor.name}` : 'an object';
}

async function fromUrl(url: string): Promise<Uint8Array> {
  const scheme = url.slice(0, url.indexOf(':')).toLowerCase();
  if (scheme === 'data') return fromDataUrl(url);
  if (scheme === 'file') {
    let file: string;
    try {
      file = fileURLToPath(url);
    } catch (err) {
      throw new ImageError('BAD_INPUT', `image URL ${shorten(url)} is not a valid file: URL (${(err as Error).message})`, { cause: err });
    }
    return readImageFile(file);
  }
  if (scheme === 'http' || scheme === 'https') {
    throw new ImageError(
      'UNSUPPORTED_URL',
      `image is a web address (${shorten(url)}); paligemma does not download images. Fetch it yourself and pass the bytes, ` +
        'e.g. Buffer.from(await (await fetch(url)).arrayBuffer())',
    );
  }
  throw new ImageError('UNSUPPORTED_URL', `image URL scheme "${scheme}:" is not supported (${shorten(url)}); give ${ACCEPTED}`);
}

/** `data:[<media type>];base64,<data>`. */
function fromDataUrl(url: string): Uint8Array {
  const comma = url.indexOf(',');
  const meta = comma < 0 ? '' : url.slice(5, comma);
  if (comma < 0 || !/;base64$/i.test(meta)) {
    throw new ImageError('BAD_INPUT', `image data: URL must be base64-encoded, like data:image/png;base64,iVBORw0… (got ${shorten(url)})`);
  }
  const payload = url.slice(comma + 1).replace(/\s+/g, '');
  // Buffer.from skips characters that are not base64; a damaged string should fail here instead.
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) {
    throw new ImageError('BAD_INPUT', `image data: URL has characters that are not base64 (${shorten(url)})`);
  }
  const bytes = Buffer.from(payload, 'base64');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

async function readImageFile(file: string): Promise<Uint8Array> {
  if (file.length === 0) throw new ImageError('BAD_INPUT', `image is an empty string; give ${ACCEPTED}`);
  const fail: FileErrorFactory = (problem, message, _path, cause) => {
    const code = problem !== 'IO' ? problem : isMissingFile(cause) ? 'NOT_FOUND' : 'UNREADABLE';
    const hint =
      code !== 'NOT_FOUND' ? ''
      : file.startsWith('~') ? ' (~ is not expanded in paths given to the library; use os.homedir())'
      : looksLikeBase64Image(file) ? ' (if this is base64 image data, prefix it with data:image/jpeg;base64, or data:image/png;base64,)'
      : '';
    return new ImageError(code, `cannot read image ${shorten(file)}: ${message}${hint}`, { cause });
  };
  return readRegularFile(file, 'an image file', fail, MAX_IMAGE_BYTES);
}

/** Base64 of a JPEG, PNG, GIF or WebP file starts with these; any long base64-only string is suspect too. */
const BASE64_IMAGE_STARTS = ['/9j/', 'iVBORw0KGgo', 'R0lGOD', 'UklGR'];

function looksLikeBase64Image(s: string): boolean {
  return /^[A-Za-z0-9+/=\s]+$/.test(s) && (s.length >= 200 || BASE64_IMAGE_STARTS.some((start) => s.startsWith(start)));
}

/** Long strings (data URLs, base64 mistaken for paths) are cut in messages. */
function shorten(s: string): string {
  return s.length > 80 ? `${s.slice(0, 60)}…(${s.length} characters)` : s;
}
