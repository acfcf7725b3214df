/**
 * Plain float64 references for the non-matmul kernels (native/kernels/impl/ops.inc and
 * attention.inc), written straight from the definitions with no attempt at speed, plus helpers to
 * build test inputs (seeded random numbers, F16/BF16 encoding, error measures).
 */
import type { AttentionShape } from './kernels/ops.js';

/** Deterministic uniform numbers in [lo, hi) (mulberry32), so failures reproduce. */
export function rng(seed: number): (lo?: number, hi?: number) => number {
  let a = seed >>> 0;
  return (lo = -1, hi = 1) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return lo + (hi - lo) * u;
  };
}

/** A Float32Array of n uniform values in [lo, hi). */
export function randomArray(rand: ReturnType<typeof rng>, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand(lo, hi);
  return a;
}

/** float32 machine epsilon (one ulp at 1.0). */
export const EPS32 = 2 ** -23;

/** Keys visible to the query at `pos`: a prefix 0..L-1 of the nKv keys. */
export function visibleKeys(s: AttentionShape, pos: number): number {
  let lim = s.nKv;
  if (s.mask === 'causal') lim = pos + 1;
  if (s.mask === 'prefix') lim = Math.max(s.prefixLen ?? 0, pos + 1);
  return Math.min(lim, s.nKv);
}

/** softmax(scale · q kᵀ + mask) v per head; result packed as [nQ][nHeads · headDim]. */
export function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, s: AttentionShape): Float64Array {
  const D = s.headDim;
  const qs = s.qStride ?? s.nHeads * D, kvs = s.kvStride ?? s.nKvHeads * D;
  const scale = s.scale ?? 1 / Math.sqrt(D);
  const group = s.nHeads / s.nKvHeads;
  const out = new Float64Array(s.nQ * s.nHeads * D);
  const scores = new Float64Array(s.nKv);
  for (let i = 0; i < s.nQ; i++) {
    const lim = visibleKeys(s, (s.qPos0 ?? 0) + i);
    for (let h = 0; h < s.nHeads; h++) {
      const kvh = Math.floor(h / group);
      let max = -Infinity;
      for (let j = 0; j < lim; j++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[i * qs + h * D + d] * k[j * kvs + kvh * D + d];
        scores[j] = dot * scale;
        max = Math.max(max, scores[j]);
      }
      let sum = 0;
      for (let j = 0; j < lim; j++) sum += scores[j] = Math.exp(scores[j] - max);
      const o = (i * s.nHeads + h) * D;
      for (let j = 0; j < lim; j++) {
        const p = scores[j] / sum;
        for (let d = 0; d < D; d++) out[o + d] += p * v[j * kvs + kvh * D + d];
      }
    }
  }
  return out;
}

/** (x - mean) / sqrt(var + eps) · w + b per row; packed [rows][dim]. */
export function layerNormRef(x: Float32Array, w: Float32Array, b: Float32Array, rows: number, dim: number,
  eps: number, ld = dim): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[r * ld + i];
    mean /= dim;
    let v = 0;
    for (let i = 0; i < dim; i++) v += (x[r * ld + i] - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = (x[r * ld + i] - mean) * rstd * w[i] + b[i];
  }
  return y;
}

/** x / sqrt(mean(x²) + eps) · w per row; packed [rows][dim]. */
export function rmsNormRef(x: Float32Array, w: Float32Array, rows: number, dim: number, eps: number,
  ld = dim): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * ld + i] ** 2;
    const rs = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * ld + i] * rs * w[i];
  }
  return y;
}

/** 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), the definition as written. Loses relative accuracy for
 * x below about -5 even in float64 (1 + tanh(u) cancels to 0 once u < -19): use geluTanhRef there. */
export function geluTanhLiteral(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/** tanh-GELU through the identity 0.5·(1 + tanh(u)) = 1 / (1 + e^(-2u)), accurate for every x in float64. */
export function geluTanhRef(x: number): number {
  const u = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3);
  return x / (1 + Math.exp(-2 * u));
}

/** NeoX rotate-half RoPE; same layout (stride ld) as x, untouched gaps copied. */
export function ropeNeoxRef(x: Float32Array, nHeads: number, headDim: number, ld: number, positions: Int32Array,
  theta: number): Float64Array {
  const y = Float64Array.from(x);
  const half = headDim / 2;
  for (let r = 0; r < positions.length; r++) {
    for (let h = 0; h < nHeads; h++) {
      const o = r * ld + h * headDim;
      for (let i = 0; i < half; i++) {
        const angle = positions[r] * Math.pow(theta, (-2 * i) / headDim);
        const a = x[o + i], b = x[o + i + half];
        y[o + i] = a * Math.cos(angle) - b * Math.sin(angle);
        y[o + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
  }
  return y;
}

/** The value of an IEEE half-precision bit pattern (decoded arithmetically, not by the code under test). */
export function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f, m = bits & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** The value of a bfloat16 bit pattern (the top half of a float32). */
export function bf16Value(bits: number): number {
  const f = new Float32Array(1);
  new Uint32Array(f.buffer)[0] = (bits & 0xffff) << 16;
  return f[0];
}

/** Largest |got[i] - want[i]| / (atol + rtol·|want[i]|) over all i; <= 1 means within tolerance. */
export function worstRatio(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} != ${want.length}`);
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const r = err / (atol + rtol * Math.abs(want[i]));
    if (!(r <= worst)) worst = r;  // NaN propagates as a failure
  }
  return worst;
}

/** Largest |got[i] - want[i]| / |want[i]| in float32 ulps (of 1.0 relative), skipping want = 0. */
export function maxRelUlps(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    if (want[i] === 0 && got[i] === 0) continue;
    const r = Math.abs(got[i] - want[i]) / Math.abs(want[i]) / EPS32;
    if (!(r <= worst)) worst = r;
  }
  return worst;
}
