/**
 * A slow float64 reference of big_vision's PaliGemma mask decoder, written from the Flax definition
 * (big_vision/evaluators/proj/paligemma/transfers/segmentation.py) with direct loops — no im2col, no
 * GEMM — and random decoder weights in the vae-oid.npz layout for it.
 *
 * The transposed convolutions follow Flax/lax literally: the PyTorch weight [in, out, kh, kw] is
 * transposed to the Flax kernel [kh, kw, out, in]; `transpose_kernel=True` flips it spatially and swaps
 * its channel axes; lax.conv_transpose with explicit padding (2, 2) dilates the input by the stride,
 * pads it by 2 on each side and correlates it with that kernel (stride 1, VALID).
 *
 * Each layer function also returns, per output, a rigorous bound on the error of a float32 layer given
 * the same float32 inputs: γ(j)·(Σ|x·w| + |bias|) over the j roundings of one output (see
 * test/helpers/reference.ts). Through the whole decoder such bounds compound (each layer multiplies the
 * incoming bound by Σ|w|), so the end-to-end reference returns values only.
 */
import { SEGMENTATION_TENSORS, segmentationTensorNames } from '../../lib/tasks/index.js';
import type { NpyArray } from '../../lib/tasks/index.js';
import { gammaF32, rng } from './reference.js';

/** Channel counts of a decoder: codebook [codes, dim], width of the 4×4 stage, the 4 upsampling outputs. */
export interface VaeShape {
  codes: number;
  dim: number;
  width: number;
  upsample: [number, number, number, number];
}

/** vae-oid.npz's sizes. */
export const VAE_OID_SHAPE: VaeShape = { codes: 128, dim: 512, width: 128, upsample: [128, 64, 32, 16] };

/** Random values that F16 holds exactly (multiples of 2⁻¹⁰ below 2 in magnitude), so F16 files lose nothing. */
function exactValues(count: number, random: () => number, scale: number): Float32Array {
  const out = new Float32Array(count);
  const steps = Math.max(1, Math.min(2047, Math.round(scale * 1024)));
  for (let i = 0; i < count; i++) out[i] = Math.round((random() * 2 - 1) * steps) / 1024;
  return out;
}

/** Random decoder tensors with the vae-oid names and PyTorch layouts. */
export function randomVae(shape: VaeShape, seed: number): Map<string, NpyArray> {
  const random = rng(seed);
  const t = SEGMENTATION_TENSORS;
  const m = new Map<string, NpyArray>();
  const put = (name: string, dims: number[], scale: number) =>
    m.set(name, { shape: dims, data: exactValues(dims.reduce((a, b) => a * b, 1), random, scale) });
  const conv = (name: string, cout: number, cin: number, k: number) => {
    put(`${name}.weight`, [cout, cin, k, k], Math.sqrt(3 / (cin * k * k)));
    put(`${name}.bias`, [cout], 0.1);
  };
  put(t.codebook, [shape.codes, shape.dim], 1);
  conv(t.input, shape.width, shape.dim, 1);
  for (const block of t.resBlocks) {
    conv(`${block}.0`, shape.width, shape.width, 3);
    conv(`${block}.2`, shape.width, shape.width, 3);
    conv(`${block}.4`, shape.width, shape.width, 1);
  }
  let cin = shape.width;
  t.upsample.forEach((name, i) => {
    const cout = shape.upsample[i]!;
    // Each output sees cin inputs at 2×2 of the 16 taps.
    put(`${name}.weight`, [cin, cout, 4, 4], Math.sqrt(3 / (cin * 4)));
    put(`${name}.bias`, [cout], 0.1);
    cin = cout;
  });
  conv(t.output, 1, cin, 1);
  if (m.size !== segmentationTensorNames().length) throw new Error('randomVae: tensor list out of step');
  return m;
}

/** HWC float64 activations. */
export interface RefMap {
  v: Float64Array;
  h: number;
  w: number;
  c: number;
}

/** A layer's exact output and, for float32 inputs, the bound γ(j)·(Σ|x·w| + |bias|) on a float32 layer's error. */
export interface RefLayer extends RefMap {
  bound: Float64Array;
}

/** Options that deliberately break the reference, to show the tests can tell. */
export interface ReferenceVariant {
  /** Skip transpose_kernel's spatial flip. */
  noFlip?: boolean;
  /** Lay the 16 codes out column-major instead of row-major. */
  columnMajor?: boolean;
}

/** The decoder's 64×64 output for `codes`, exactly (float64 throughout). */
export function referenceDecode(tensors: Map<string, NpyArray>, codes: number[], variant: ReferenceVariant = {}): Float64Array {
  const get = (name: string) => tensors.get(name)!;
  const t = SEGMENTATION_TENSORS;
  const book = get(t.codebook);
  const dim = book.shape[1]!;
  let x: RefMap = { v: new Float64Array(16 * dim), h: 4, w: 4, c: dim };
  for (let i = 0; i < 16; i++) {
    const [row, col] = variant.columnMajor ? [i % 4, Math.floor(i / 4)] : [Math.floor(i / 4), i % 4];
    for (let d = 0; d < dim; d++) x.v[(row * 4 + col) * dim + d] = book.data[codes[i]! * dim + d]!;
  }
  const conv = (input: RefMap, layer: string) => refConv(input, get(`${layer}.weight`), get(`${layer}.bias`));
  x = relu(conv(x, t.input));
  for (const block of t.resBlocks) {
    const y = conv(relu(conv(relu(conv(x, `${block}.0`)), `${block}.2`)), `${block}.4`);
    for (let i = 0; i < y.v.length; i++) y.v[i] = y.v[i]! + x.v[i]!;
    x = y;
  }
  for (const name of t.upsample) {
    x = relu(refFlaxConvTranspose(x, get(`${name}.weight`), get(`${name}.bias`), { stride: 2, padding: 2, noFlip: variant.noFlip }));
  }
  return conv(x, t.output).v;
}

function relu<T extends RefMap>(x: T): T {
  for (let i = 0; i < x.v.length; i++) x.v[i] = Math.max(0, x.v[i]!);
  return x;
}

/** Flax nn.Conv(kernel k×k, padding (k−1)/2) with a PyTorch weight [out, in, k, k]: a plain correlation. */
export function refConv(x: RefMap, weight: NpyArray, bias: NpyArray): RefLayer {
  const [cout, cin, k] = weight.shape as [number, number, number];
  const pad = (k - 1) / 2;
  const W = weight.data;
  const g = gammaF32(cin * k * k + 2);
  const y: RefLayer = { v: new Float64Array(x.h * x.w * cout), bound: new Float64Array(x.h * x.w * cout), h: x.h, w: x.w, c: cout };
  for (let oy = 0; oy < x.h; oy++) {
    for (let ox = 0; ox < x.w; ox++) {
      for (let co = 0; co < cout; co++) {
        let sum = bias.data[co]!;
        let mag = Math.abs(sum);
        for (let ky = 0; ky < k; ky++) {
          const iy = oy + ky - pad;
          if (iy < 0 || iy >= x.h) continue;
          for (let kx = 0; kx < k; kx++) {
            const ix = ox + kx - pad;
            if (ix < 0 || ix >= x.w) continue;
            for (let ci = 0; ci < cin; ci++) {
              const term = x.v[(iy * x.w + ix) * cin + ci]! * W[((co * cin + ci) * k + ky) * k + kx]!;
              sum += term;
              mag += Math.abs(term);
            }
          }
        }
        const o = (oy * x.w + ox) * cout + co;
        y.v[o] = sum;
        y.bound[o] = g * mag;
      }
    }
  }
  return y;
}

/**
 * nn.ConvTranspose(kernel k×k, strides s, padding=p (explicit, lax convention), transpose_kernel=True)
 * with the PyTorch weight [in, out, k, k] transposed to Flax's [k, k, out, in], as big_vision loads
 * vae-oid.npz (k = 4, s = 2, p = 2 there).
 */
export function refFlaxConvTranspose(x: RefMap, weight: NpyArray, bias: NpyArray, o: { stride: number; padding: number; noFlip?: boolean }): RefLayer {
  const [cin, cout, K] = weight.shape as [number, number, number];
  const { stride, padding: pad } = o;
  // Flax kernel [kh, kw, out, in] = transpose(PyTorch [in, out, kh, kw], (2, 3, 1, 0)).
  const flax = (kh: number, kw: number, out: number, i: number) => weight.data[((i * cout + out) * K + kh) * K + kw]!;
  // transpose_kernel: flip the spatial axes and swap the channel axes → HWIO [kh, kw, in, out].
  const hwio = (a: number, b: number, i: number, out: number) => (o.noFlip ? flax(a, b, out, i) : flax(K - 1 - a, K - 1 - b, out, i));
  // conv_general_dilated(lhs_dilation=s, padding=((p,p),(p,p))), VALID correlation: input pixel i sits
  // at s·i + p of the dilated, padded map, whose size is (n − 1)·s + 1 + 2p.
  const oh = (x.h - 1) * stride + 1 + 2 * pad - K + 1;
  const ow = (x.w - 1) * stride + 1 + 2 * pad - K + 1;
  // The implementation sums cin products per tap, then adds the bias and up to ⌈K/s⌉² taps.
  const g = gammaF32(cin + 2 + Math.ceil(K / stride) ** 2);
  const y: RefLayer = { v: new Float64Array(oh * ow * cout), bound: new Float64Array(oh * ow * cout), h: oh, w: ow, c: cout };
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      for (let co = 0; co < cout; co++) {
        let sum = bias.data[co]!;
        let mag = Math.abs(sum);
        for (let a = 0; a < K; a++) {
          const py = oy + a - pad; // position in the dilated, unpadded input
          if (py < 0 || py % stride !== 0 || py / stride >= x.h) continue;
          for (let b = 0; b < K; b++) {
            const px = ox + b - pad;
            if (px < 0 || px % stride !== 0 || px / stride >= x.w) continue;
            for (let ci = 0; ci < cin; ci++) {
              const term = x.v[((py / stride) * x.w + px / stride) * cin + ci]! * hwio(a, b, ci, co);
              sum += term;
              mag += Math.abs(term);
            }
          }
        }
        const i = (oy * ow + ox) * cout + co;
        y.v[i] = sum;
        y.bound[i] = g * mag;
      }
    }
  }
  return y;
}
