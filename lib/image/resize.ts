/** PIL-compatible bicubic resize, computed natively off the JS thread. */
import { native } from '../native.js';
import { ImageError } from './errors.js';

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
  const data = await native.resizeRgb(src.data, src.width, src.height, src.channels, outWidth, outHeight);
  return { data, width: outWidth, height: outHeight, channels: src.channels };
}
