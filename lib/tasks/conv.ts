/**
 * 2-D convolutions for the small mask decoder, as one native GEMM each plus a gather (im2col) or a
 * scatter-add (col2im) in TypeScript. Feature maps are NHWC with batch 1: `height · width` rows of
 * `channels` contiguous values, which is the row layout the GEMM kernel reads and writes.
 */
import { native, type SimdVariantName } from '../native.js';

/** Activations: [height, width, channels], channels contiguous. */
export interface FeatureMap {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

/** A Conv2d (stride 1, zero padding (kernel − 1)/2, so the size is kept), weights in PyTorch layout. */
export interface ConvWeights {
  /** [cout, cin, kernel, kernel] flattened: row `o` holds cin · kernel² values, the im2col column order. */
  weight: Float32Array;
  bias: Float32Array;
  cin: number;
  cout: number;
  /** Odd. */
  kernel: number;
}

/**
 * A PyTorch-style ConvTranspose2d: y[s·i − padding + k] += x[i] · w[k] along each axis, so the output
 * size is (n − 1) · stride − 2 · padding + kernel.
 */
export interface ConvTransposeWeights {
  /**
   * [cout · kernel², cin]: for each output channel and kernel tap, the cin weights. This is PyTorch's
   * [cin, cout, kernel, kernel] transposed once at load, so the GEMM sees rows of cin contiguous values.
   */
  weightT: Float32Array;
  bias: Float32Array;
  cin: number;
  cout: number;
  kernel: number;
  stride: number;
  padding: number;
}

/** y = conv(x) + bias: im2col [h·w, cin·k²] × weight[cout, cin·k²]ᵀ. */
export async function conv2d(x: FeatureMap, c: ConvWeights, simd?: SimdVariantName): Promise<FeatureMap> {
  const { height: h, width: w, channels } = x;
  const k = c.kernel;
  const taps = k * k;
  let cols = x.data;
  if (k > 1) {
    const pad = (k - 1) >> 1;
    cols = new Float32Array(h * w * channels * taps); // zeros are the padding
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        const row = (y * w + xx) * channels * taps;
        for (let ky = 0; ky < k; ky++) {
          const sy = y + ky - pad;
          if (sy < 0 || sy >= h) continue;
          for (let kx = 0; kx < k; kx++) {
            const sx = xx + kx - pad;
            if (sx < 0 || sx >= w) continue;
            const src = (sy * w + sx) * channels;
            const tap = ky * k + kx;
            for (let ci = 0; ci < channels; ci++) cols[row + ci * taps + tap] = x.data[src + ci]!;
          }
        }
      }
    }
  }
  const data = await native.gemmAsync(cols, c.weight, 'f32', c.bias, h * w, channels * taps, c.cout, simd);
  return { data, height: h, width: w, channels: c.cout };
}

/** y = convTranspose(x) + bias: GEMM [h·w, cin] × weightT[cout·k², cin]ᵀ, then col2im scatter-add. */
export async function convTranspose2d(x: FeatureMap, c: ConvTransposeWeights, simd?: SimdVariantName): Promise<FeatureMap> {
  const { height: h, width: w } = x;
  const { kernel: k, stride: s, padding: p, cout } = c;
  const taps = k * k;
  const cols = await native.gemmAsync(x.data, c.weightT, 'f32', null, h * w, c.cin, cout * taps, simd);
  const oh = (h - 1) * s - 2 * p + k;
  const ow = (w - 1) * s - 2 * p + k;
  const out = new Float32Array(oh * ow * cout);
  for (let i = 0; i < oh * ow; i++) out.set(c.bias, i * cout);
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < w; xx++) {
      const row = (y * w + xx) * cout * taps;
      for (let ky = 0; ky < k; ky++) {
        const oy = y * s - p + ky;
        if (oy < 0 || oy >= oh) continue;
        for (let kx = 0; kx < k; kx++) {
          const ox = xx * s - p + kx;
          if (ox < 0 || ox >= ow) continue;
          const dst = (oy * ow + ox) * cout;
          const tap = ky * k + kx;
          for (let co = 0; co < cout; co++) out[dst + co] += cols[row + co * taps + tap]!;
        }
      }
    }
  }
  return { data: out, height: oh, width: ow, channels: cout };
}

/** PyTorch ConvTranspose2d weight [cin, cout, k, k] → [cout · k², cin] for {@link convTranspose2d}. */
export function transposeConvTWeight(w: Float32Array, cin: number, cout: number, kernel: number): Float32Array {
  const taps = kernel * kernel;
  const t = new Float32Array(w.length);
  for (let ci = 0; ci < cin; ci++) {
    for (let r = 0; r < cout * taps; r++) t[r * cin + ci] = w[ci * cout * taps + r]!;
  }
  return t;
}

/** In place max(0, x). */
export function relu(x: FeatureMap): FeatureMap {
  const d = x.data;
  for (let i = 0; i < d.length; i++) if (d[i]! < 0) d[i] = 0;
  return x;
}
