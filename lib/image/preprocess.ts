/**
 * PaliGemma image preprocessing, as Hugging Face's SiglipImageProcessor does it: RGB, resize to
 * size × size with PIL-compatible bicubic on 8-bit pixels, × 1/255, (x − mean) / std, channel-first.
 */
import { decodeImage, type DecodeOptions, type ImageInput } from './decode.js';
import { ImageError } from './errors.js';
import { resizeBicubic } from './resize.js';

/** Largest accepted `size` (PaliGemma checkpoints use 224, 448 and 896). */
export const MAX_IMAGE_SIZE = 4096;

/** Options for {@link preprocess}. */
export interface PreprocessOptions extends DecodeOptions {
  /** Side of the square model input in pixels (the projector's image size, e.g. 224). */
  size: number;
  /** Per-channel mean subtracted after scaling to 0..1 (default [0.5, 0.5, 0.5]). */
  mean?: readonly number[];
  /** Per-channel divisor applied after the mean (default [0.5, 0.5, 0.5]). */
  std?: readonly number[];
}

/** A model-ready image. */
export interface PreprocessedImage {
  /** [3, size, size], CHW, normalised. */
  pixelValues: Float32Array;
  /** Width of the original image after EXIF orientation (to map detection boxes back). */
  width: number;
  /** Height of the original image after EXIF orientation. */
  height: number;
  /** [size, size, 3], HWC: the resized 8-bit image the values were computed from. */
  resized: Uint8Array;
}

/** Decodes, resizes and normalises an image for the vision tower. Throws ImageError on bad input or options. */
export async function preprocess(image: ImageInput, options: PreprocessOptions): Promise<PreprocessedImage> {
  const { size } = options;
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_IMAGE_SIZE) {
    throw new ImageError('BAD_OPTION', `size must be an integer in 1..${MAX_IMAGE_SIZE}, got ${size}`);
  }
  const mean = channelTriple(options.mean ?? [0.5, 0.5, 0.5], 'mean');
  const std = channelTriple(options.std ?? [0.5, 0.5, 0.5], 'std');
  if (std.some((s) => Math.fround(s) === 0)) throw new ImageError('BAD_OPTION', 'std must not contain 0');

  const rgb = await decodeImage(image, options);
  const resized = await resizeBicubic({ ...rgb, channels: 3 }, size, size);
  const pixelValues = normalize(resized.data, size, size, mean, std);
  return { pixelValues, width: rgb.width, height: rgb.height, resized: resized.data };
}

/**
 * RGB u8 HWC [height, width, 3] → float32 CHW [3, height, width], with the reference's arithmetic:
 * x · (1/255) in float64 rounded to float32 (transformers' rescale), then (x − mean) / std in
 * float32 with mean and std cast to float32 (its normalize). Bit-identical to the reference.
 */
export function normalize(
  rgb: Uint8Array,
  width: number,
  height: number,
  mean: readonly number[],
  std: readonly number[],
): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    // Only 256 distinct inputs per channel: compute each once.
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      const scaled = Math.fround(v * (1 / 255));
      // float32 a − b and a / b equal the double result rounded once to float32.
      table[v] = Math.fround(scaled - m) / s;
    }
    for (let i = 0; i < plane; i++) out[c * plane + i] = table[rgb[i * 3 + c]!]!;
  }
  return out;
}

function channelTriple(v: readonly number[], name: string): readonly number[] {
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new ImageError('BAD_OPTION', `${name} must be an array of 3 finite numbers, got ${JSON.stringify(v)}`);
  }
  return v;
}
