/** PIL-compatible bicubic resize, computed natively off the JS thread. */
import { native } from '../native.js';
import { ImageError } from './errors.js';

/** The widest or tallest image the resize takes, in or out (native/bind_image.cc's kMaxSide). */
export const MAX_RESIZE_SIDE = 2 ** 20;
/** The largest buffer of a resize: input, output, or the image between its two passes (kMaxBytes there). */
const MAX_RESIZE_BYTES = 2 ** 31;

/**
 * Refuses, as an ImageError TOO_LARGE, a resize the native code would refuse: a side over
 * {@link MAX_RESIZE_SIDE} (an image can be that wide and still under `maxPixels`) or a buffer over 2 GiB.
 */
function checkResizable(width: number, height: number, channels: number, outWidth: number, outHeight: number): void {
  const tooWide = (w: number, h: number) => w > MAX_RESIZE_SIDE || h > MAX_RESIZE_SIDE;
  if (tooWide(width, height) || tooWide(outWidth, outHeight)) {
    const [w, h] = tooWide(width, height) ? [width, height] : [outWidth, outHeight];
    throw new ImageError('TOO_LARGE', `image is ${w}x${h}; images up to ${MAX_RESIZE_SIDE} pixels on a side can be resized`);
  }
  const bytes = Math.max(width * height, outWidth * outHeight, outWidth * height) * channels;
  if (bytes > MAX_RESIZE_BYTES) {
    throw new ImageError('TOO_LARGE', `resizing ${width}x${height} to ${outWidth}x${outHeight} needs a buffer of ${bytes} bytes, more than the 2 GiB limit`);
  }
}

/** Interleaved 8-bit pixels (HWC) with 1..4 channels. */
export interface Pixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/**
 * Resizes 8-bit pixels exactly as Pillow's `Image.resize((outWidth, outHeight), Image.BICUBIC)`
 * does for 8-bit images (antialiased Keys cubic, a = -0.5; fixed-point arithmetic, rounded and
 * clipped after each pass). An unchanged size returns a copy, as Pillow does. The work runs on a
 * libuv worker thread on a private copy of `src.data`.
 */
export async function resizeBicubic(src: Pixels, outWidth: number, outHeight: number): Promise<Pixels> {
  for (const [name, v] of [['outWidth', outWidth], ['outHeight', outHeight]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new ImageError('BAD_OPTION', `resize: ${name} must be a positive integer, got ${v}`);
    }
  }
  checkResizable(src.width, src.height, src.channels, outWidth, outHeight);
  const data = await native.resizeRgb(src.data, src.width, src.height, src.channels, outWidth, outHeight);
  return { data, width: outWidth, height: outHeight, channels: src.channels };
}
