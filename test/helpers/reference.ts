/**
 * Independent float64 reference implementations for kernel tests, plus exact F16/BF16 conversions
 * and a seeded random source. Nothing here calls native code.
 *
 * Tolerances: a kernel that sums k float32 products (in any order, with or without FMA) and adds a
 * bias differs from the exact sum by at most γ(k+2)·(Σ|x·w| + |bias|), where γ(j) = j·u/(1 − j·u)
 * and u = 2⁻²⁴ (the standard bound for recursive/blocked summation, one extra rounding for the
 * product and one for the bias). The references therefore return that magnitude alongside each value.
 */

/** A deterministic uniform [0, 1) generator, so failures reproduce (the library's own). */
import { seededRandom as rng } from '../../lib/model/sampling.js';
export { rng };

/** count float32 values uniform in [-scale, scale). */
export function randomF32(count: number, random: () => number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (random() * 2 - 1) * scale;
  return out;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The bits of the float32 nearest to `value`. */
export function f32Bits(value: number): number {
  f32Scratch[0] = value;
  return u32Scratch[0]!;
}

/** The exact value of an IEEE half-precision bit pattern. */
export function f16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const man = bits & 0x3ff;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  if (exp === 0) return sign * man * 2 ** -24; // subnormal (or zero)
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** The exact value of a bfloat16 bit pattern (the top half of a float32). */
export function bf16ToNumber(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0]!;
}

/** The half-precision bits nearest to `value` (round to nearest even; overflow to infinity). */
export function numberToF16(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a >= 65520) return sign | 0x7c00; // at or past the rounding midpoint above the largest half
  if (a < 2 ** -14) return sign | roundHalfEven(a / 2 ** -24); // subnormal; may round up to 0x400
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a) exp--; // guard log2 rounding
  if (2 ** (exp + 1) <= a) exp++;
  const man = roundHalfEven((a / 2 ** exp - 1) * 1024); // may carry into the exponent: still correct bits
  return sign | (((exp + 15) << 10) + man);
}

/** The bfloat16 bits nearest to `value` (round to nearest even). */
export function numberToBf16(value: number): number {
  if (Number.isNaN(value)) return 0x7fc0;
  const bits = f32Bits(value); // the float32 rounding first: exact for the float32 inputs used here
  const lower = bits & 0xffff;
  let upper = bits >>> 16;
  if (lower > 0x8000 || (lower === 0x8000 && upper & 1)) upper++;
  return upper & 0xffff;
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/** Element type of a weight matrix. */
export type WeightType = 'f32' | 'f16' | 'bf16';

/** A weight matrix in its storage form and decoded exactly to float64. */
export interface Weights {
  data: Float32Array | Uint16Array;
  type: WeightType;
  values: Float64Array;
}

/** Stores float values as `type` (rounding to nearest) and decodes the stored values exactly. */
export function encodeWeights(source: ArrayLike<number>, type: WeightType): Weights {
  const values = new Float64Array(source.length);
  if (type === 'f32') {
    const data = Float32Array.from(source);
    values.set(data);
    return { data, type, values };
  }
  const data = new Uint16Array(source.length);
  for (let i = 0; i < source.length; i++) {
    data[i] = type === 'f16' ? numberToF16(source[i]!) : numberToBf16(source[i]!);
    values[i] = type === 'f16' ? f16ToNumber(data[i]!) : bf16ToNumber(data[i]!);
  }
  return { data, type, values };
}

/** Decodes stored weight elements exactly. */
export function decodeWeights(data: Float32Array | Uint16Array, type: WeightType): Float64Array {
  if (type === 'f32') return Float64Array.from(data);
  const decode = type === 'f16' ? f16ToNumber : bf16ToNumber;
  return Float64Array.from(data, decode);
}

/** An exact result and, per element, Σ|terms| (the scale of its rounding error bound). */
export interface Reference {
  y: Float64Array;
  magnitude: Float64Array;
}

/**
 * y[n, m] = x[n, k] · w[m, k]ᵀ + bias in float64 (exact for these inputs up to float64 rounding,
 * which is 2⁻²⁹ times smaller than the float32 bound the tests apply).
 */
export function referenceMatmul(x: ArrayLike<number>, w: Float64Array, bias: ArrayLike<number> | null,
  n: number, k: number, m: number, ldx = k): Reference {
  const y = new Float64Array(n * m);
  const magnitude = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let sum = bias ? bias[j]! : 0;
      let mag = Math.abs(sum);
      for (let t = 0; t < k; t++) {
        const p = x[i * ldx + t]! * w[j * k + t]!;
        sum += p;
        mag += Math.abs(p);
      }
      y[i * m + j] = sum;
      magnitude[i * m + j] = mag;
    }
  }
  return { y, magnitude };
}

/**
 * Conv2d(kernel = stride = patch) computed directly: out[p, o] = bias[o] + Σ_c,ky,kx
 * pixels[c, py·patch + ky, px·patch + kx] · weight[o, c, ky, kx], patches p = py·gridW + px.
 */
export function referencePatchEmbed(pixels: ArrayLike<number>, channels: number, height: number, width: number,
  patch: number, weight: Float64Array, bias: ArrayLike<number> | null, hidden: number): Reference {
  const gridH = Math.floor(height / patch);
  const gridW = Math.floor(width / patch);
  const y = new Float64Array(gridH * gridW * hidden);
  const magnitude = new Float64Array(y.length);
  for (let py = 0; py < gridH; py++) {
    for (let px = 0; px < gridW; px++) {
      for (let o = 0; o < hidden; o++) {
        let sum = bias ? bias[o]! : 0;
        let mag = Math.abs(sum);
        for (let c = 0; c < channels; c++) {
          for (let ky = 0; ky < patch; ky++) {
            for (let kx = 0; kx < patch; kx++) {
              const pixel = pixels[(c * height + py * patch + ky) * width + px * patch + kx]!;
              const p = pixel * weight[((o * channels + c) * patch + ky) * patch + kx]!;
              sum += p;
              mag += Math.abs(p);
            }
          }
        }
        y[(py * gridW + px) * hidden + o] = sum;
        magnitude[(py * gridW + px) * hidden + o] = mag;
      }
    }
  }
  return { y, magnitude };
}

/** γ(j) = j·u / (1 − j·u) with u = 2⁻²⁴: the relative bound of a j-step float32 summation. */
export function gammaF32(j: number): number {
  const ju = j * 2 ** -24;
  return ju / (1 - ju);
}

/** The largest |actual − expected| / bound over all elements (≤ 1 means within bound), and where. */
export function worstRatio(actual: ArrayLike<number>, expected: Float64Array, bound: Float64Array):
  { ratio: number; index: number } {
  let ratio = 0;
  let index = -1;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!);
    if (Number.isNaN(err)) return { ratio: Infinity, index: i };
    const r = err === 0 ? 0 : bound[i]! > 0 ? err / bound[i]! : Infinity;
    if (r > ratio) {
      ratio = r;
      index = i;
    }
  }
  return { ratio, index };
}
