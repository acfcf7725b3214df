/**
 * The non-matmul kernels (attention, norms, activations, RoPE, row gather) against float64
 * references, for every SIMD variant this CPU can run, plus their argument checks.
 *
 * Error measure: float32 results are compared with float64 references; "ulp" means a relative
 * error of 2^-23 (one float32 ulp at 1.0). Each tolerance is stated next to its kernel with the
 * reasoning and, where useful, the error measured on this machine when the test was written.
 */
import { describe, expect, it } from 'vitest';
import { simdVariants, type SimdVariantName } from '../lib/native.js';
import * as ops from './helpers/kernels/ops.js';
import { adversarialBlocks, QUANT_TYPES, referenceDequantize } from './helpers/quant-ref.js';
import {
  EPS32, attentionRef, bf16Value, f16Value, geluTanhLiteral, geluTanhRef, layerNormRef, maxRelUlps, randomArray,
  rmsNormRef, rng, ropeNeoxRef, visibleKeys, worstRatio,
} from './helpers/reference-ops.js';

const variants: SimdVariantName[] = simdVariants().filter((v) => v.supported).map((v) => v.name);

/** Random q, k, v for a shape (rows padded to the strides), values in [-amp, amp). */
function attentionInputs(seed: number, s: ops.AttentionShape, amp = 1) {
  const rand = rng(seed);
  const D = s.headDim;
  const qs = s.qStride ?? s.nHeads * D, kvs = s.kvStride ?? s.nKvHeads * D;
  return {
    q: randomArray(rand, (s.nQ - 1) * qs + s.nHeads * D, -amp, amp),
    k: randomArray(rand, (s.nKv - 1) * kvs + s.nKvHeads * D, -amp, amp),
    v: randomArray(rand, (s.nKv - 1) * kvs + s.nKvHeads * D),
  };
}

/** The result's used elements, packed [nQ][nHeads · headDim] like attentionRef. */
function packedOutput(out: Float32Array, s: ops.AttentionShape): Float32Array {
  const w = s.nHeads * s.headDim, os = s.outStride ?? w;
  const packed = new Float32Array(s.nQ * w);
  for (let i = 0; i < s.nQ; i++) packed.set(out.subarray(i * os, i * os + w), i * w);
  return packed;
}

// Attention tolerance. Inputs are uniform in [-1, 1), scale 1/sqrt(D), so scores are O(1) and each
// output is a convex combination of values with |v| < 1. Float32 rounding in the dot products
// (~sqrt(D)·eps relative), the exp approximation (~2 ulp) and the weighted sums leave an absolute
// error of a few 1e-7 (measured max 2.2e-7 over the shapes below); 2e-6 leaves room for other
// summation orders without hiding a wrong mask or a wrong head, which move outputs by ~1e-2.
const ATT_ATOL = 2e-6;

describe.each(variants)('attention [%s]', (simd) => {
  function check(s: ops.AttentionShape, seed: number, atol = ATT_ATOL, amp = 1) {
    const { q, k, v } = attentionInputs(seed, s, amp);
    const out = ops.attention(q, k, v, s, simd);
    const os = s.outStride ?? s.nHeads * s.headDim;
    expect(out.length).toBe(s.nQ * os);
    const ratio = worstRatio(packedOutput(out, s), attentionRef(q, k, v, s), atol, 0);
    expect(ratio, `${JSON.stringify(s)}: worst error / tolerance`).toBeLessThanOrEqual(1);
    return out;
  }

  it('GQA 8:1, head_dim 256, every mask mode and prefix length', () => {
    const base = { nQ: 37, nKv: 37, nHeads: 8, nKvHeads: 1, headDim: 256 };
    check({ ...base, mask: 'full' }, 1);
    check({ ...base, mask: 'causal' }, 2);
    for (const prefixLen of [0, 20, 37]) check({ ...base, mask: 'prefix', prefixLen }, 3 + prefixLen);
  });

  it('16:16 heads with head_dim 72 (vision tower: not a multiple of the vector width)', () => {
    check({ nQ: 70, nKv: 70, nHeads: 16, nKvHeads: 16, headDim: 72, mask: 'full' }, 10);
  });

  it('4:2 grouping with odd head dims and more keys than queries', () => {
    for (const headDim of [1, 7, 15, 17, 255]) {
      check({ nQ: 7, nKv: 150, nHeads: 4, nKvHeads: 2, headDim, mask: 'causal', qPos0: 143 }, 20 + headDim);
    }
    check({ nQ: 9, nKv: 130, nHeads: 4, nKvHeads: 2, headDim: 33, mask: 'prefix', prefixLen: 60, qPos0: 121 }, 30);
  });

  it('257 query rows crossing several key tiles, causal and partial prefix', () => {
    check({ nQ: 257, nKv: 257, nHeads: 2, nKvHeads: 1, headDim: 15, mask: 'causal' }, 40);
    check({ nQ: 257, nKv: 257, nHeads: 2, nKvHeads: 1, headDim: 15, mask: 'prefix', prefixLen: 100 }, 41);
  });

  it('decodes 1..4 queries against a KV cache of up to 2048 keys (split over the keys)', () => {
    for (const nQ of [1, 2, 3, 4]) {
      check({ nQ, nKv: 300, nHeads: 8, nKvHeads: 1, headDim: 256, mask: 'causal', qPos0: 300 - nQ }, 50 + nQ);
      check({ nQ, nKv: 300, nHeads: 8, nKvHeads: 1, headDim: 256, mask: 'prefix', prefixLen: 266, qPos0: 300 - nQ },
        60 + nQ);
    }
    check({ nQ: 1, nKv: 2048, nHeads: 8, nKvHeads: 1, headDim: 256, mask: 'causal', qPos0: 2047 }, 70);
    // A query block whose rows see different key counts inside one split.
    check({ nQ: 4, nKv: 1000, nHeads: 8, nKvHeads: 1, headDim: 64, mask: 'causal', qPos0: 700 }, 71);
  });

  it('full-size prefill and vision shapes', () => {
    check({ nQ: 266, nKv: 266, nHeads: 8, nKvHeads: 1, headDim: 256, mask: 'prefix', prefixLen: 259 }, 80);
    check({ nQ: 256, nKv: 256, nHeads: 16, nKvHeads: 16, headDim: 72, mask: 'full' }, 81);
  });

  it('honours explicit strides and scale, leaving output gaps untouched', () => {
    const s: ops.AttentionShape = {
      nQ: 5, nKv: 23, nHeads: 4, nKvHeads: 2, headDim: 9, qStride: 41, kvStride: 19, outStride: 40,
      mask: 'causal', qPos0: 18, scale: 0.7,
    };
    const out = check(s, 90);
    for (let i = 0; i < s.nQ; i++) {
      for (let j = 36; j < 40; j++) expect(out[i * 40 + j]).toBe(0);
    }
  });

  it('stays finite and accurate with large scores (max subtraction)', () => {
    // Scores up to ~±900: tolerance grows with them, because a score's float32 rounding error
    // (~|score|·eps) goes straight into the exponent: 900 · 6e-8 ≈ 5e-5 relative on the weights.
    const s: ops.AttentionShape = { nQ: 20, nKv: 90, nHeads: 2, nKvHeads: 1, headDim: 64, mask: 'causal',
      qPos0: 70, scale: 1 };
    const out = check(s, 100, 2e-4, 6);
    expect(out.every(Number.isFinite)).toBe(true);
  });

  it('ignores keys and values a query may not see', () => {
    // Independent of the reference: rewriting the invisible K/V rows must not change any output.
    for (const s of [
      { nQ: 6, nKv: 200, nHeads: 8, nKvHeads: 1, headDim: 256, mask: 'causal', qPos0: 60 },
      { nQ: 6, nKv: 200, nHeads: 8, nKvHeads: 1, headDim: 256, mask: 'prefix', prefixLen: 50, qPos0: 10 },
    ] satisfies ops.AttentionShape[]) {
      const { q, k, v } = attentionInputs(110, s);
      const before = ops.attention(q, k, v, s, simd);
      const lastVisible = visibleKeys(s, s.qPos0 + s.nQ - 1);
      k.fill(1e3, lastVisible * s.headDim);
      v.fill(Number.NaN, lastVisible * s.headDim);
      expect(ops.attention(q, k, v, s, simd)).toEqual(before);
    }
  });
});

describe('attention argument checks', () => {
  const s: ops.AttentionShape = { nQ: 2, nKv: 3, nHeads: 4, nKvHeads: 2, headDim: 8, mask: 'full' };
  const q = new Float32Array(2 * 32), kv = new Float32Array(3 * 16);
  const bad = (shape: object, qq: Float32Array = q, kk: Float32Array = kv) => () =>
    ops.attention(qq, kk, kv, shape as ops.AttentionShape);

  it('rejects bad shapes with a message naming the problem', () => {
    expect(bad({ ...s, nKvHeads: 3 })).toThrow(/nHeads \(4\) must be a multiple of shape.nKvHeads \(3\)/);
    expect(bad({ ...s, nKv: 0 })).toThrow(RangeError);
    expect(bad({ ...s, headDim: 2.5 })).toThrow(/headDim must be an integer/);
    expect(bad({ ...s, nQ: undefined })).toThrow(/shape.nQ is required/);
    expect(bad({ ...s, mask: 'sliding' })).toThrow(/mask must be 'full', 'causal' or 'prefix'/);
    expect(bad({ ...s, mask: 'prefix' })).toThrow(/prefixLen is required/);
    expect(bad({ ...s, qStride: 31 })).toThrow(/qStride must be an integer in \[32,/);
    expect(bad({ ...s, kvStride: 15 })).toThrow(RangeError);
    expect(bad({ ...s, qPos0: -1 })).toThrow(RangeError);
    expect(bad({ ...s, scale: Number.NaN })).toThrow(/scale must be a finite number/);
    expect(() => ops.attention(q, kv, kv, null as unknown as ops.AttentionShape)).toThrow(/shape must be an object/);
  });

  it('rejects arrays that are too short or of the wrong type', () => {
    expect(bad(s, q.subarray(1))).toThrow(/attention: q has 63 elements, the shape needs 64/);
    expect(bad(s, q, kv.subarray(0, 47))).toThrow(/attention: k has 47 elements/);
    expect(bad({ ...s, kvStride: 17 })).toThrow(/the shape needs 50/);
    expect(bad(s, new Float64Array(64) as unknown as Float32Array)).toThrow(/q must be a Float32Array/);
    expect(() => ops.attention(q, kv, kv, s, 'sse9' as SimdVariantName)).toThrow(/unknown SIMD variant 'sse9'/);
  });

  it('refuses outputs beyond the size limit instead of trying to allocate them', () => {
    expect(bad({ ...s, outStride: 2 ** 40 })).toThrow(/more than the limit/);
  });
});

describe.each(variants)('norms [%s]', (simd) => {
  const cases = [
    [1, 1], [7, 7], [3, 15], [257, 17], [2, 72], [5, 255], [7, 256], [3, 2048],
  ] as const;

  it('layerNorm matches float64 for odd and real sizes, with strides, also far from zero mean', () => {
    const rand = rng(200);
    // (x - mean)·rstd is O(1); the float32 mean is off by a few ulp of |mean|, which the division
    // by std amplifies by |mean|/std. Values in [2, 4): |mean|/std ≈ 5, measured worst 4.2e-6
    // absolute (scalar at dim 2048, whose sums run sequentially; AVX2 1.2e-6): tolerance 2e-5.
    // Values in [30, 32): |mean|/std ≈ 54, measured worst 3e-5: tolerance 2e-4. A one-pass
    // variance (E[x²] - mean²) cancels catastrophically there and is off by 2e-3 to 4e-3.
    for (const [lo, atol] of [[2, 2e-5], [30, 2e-4]]) {
      for (const [rows, dim] of cases) {
        const ld = dim + (rows % 3);  // some row gaps
        const x = randomArray(rand, (rows - 1) * ld + dim, lo, lo + 2);
        const w = randomArray(rand, dim, -2, 2), b = randomArray(rand, dim);
        const y = ops.layerNorm(x, w, b, { rows, dim, ld, eps: 1e-6 }, simd);
        expect(worstRatio(y, layerNormRef(x, w, b, rows, dim, 1e-6, ld), atol, 8 * EPS32), `[${lo}, ${lo + 2}) ${rows}x${dim}`)
          .toBeLessThanOrEqual(1);
      }
    }
  });

  it('rmsNorm matches float64, and writes output rows at ldOut', () => {
    const rand = rng(201);
    for (const [rows, dim] of cases) {
      const x = randomArray(rand, rows * dim, -3, 3), w = randomArray(rand, dim, 0, 2);
      const ldOut = dim + 2;
      const y = ops.rmsNorm(x, w, { rows, dim, eps: 1e-6, ldOut }, simd);
      expect(y.length).toBe(rows * ldOut);
      const packed = new Float32Array(rows * dim);
      for (let r = 0; r < rows; r++) {
        packed.set(y.subarray(r * ldOut, r * ldOut + dim), r * dim);
        expect([y[r * ldOut + dim], y[r * ldOut + dim + 1]]).toEqual([0, 0]);
      }
      // Only the sum of squares accumulates error (~sqrt(dim)·eps, halved by the square root);
      // each output then takes three more roundings (measured worst 4.4 ulp): 16 ulp relative plus
      // a tiny absolute floor.
      expect(worstRatio(packed, rmsNormRef(x, w, rows, dim, 1e-6), 1e-7, 16 * EPS32)).toBeLessThanOrEqual(1);
    }
  });

  it('reject bad sizes', () => {
    const x = new Float32Array(10), w = new Float32Array(5);
    expect(() => ops.layerNorm(x, w, w, { rows: 3, dim: 5, eps: 1e-6 }, simd)).toThrow(/x has 10 elements/);
    expect(() => ops.layerNorm(x, w.subarray(1), w, { dim: 5, eps: 1e-6 }, simd)).toThrow(/weight has 4 elements/);
    expect(() => ops.rmsNorm(x, w, { dim: 5, ld: 4, eps: 1e-6 }, simd)).toThrow(/ldx must be in \[5,/);
    expect(() => ops.rmsNorm(x, w, { dim: 5, eps: -1 }, simd)).toThrow(/eps must be >= 0/);
    expect(() => ops.rmsNorm(x, w, { dim: 0, eps: 1e-6 }, simd)).toThrow(/dim must be in \[1,/);
  });
});

describe.each(variants)('elementwise kernels [%s]', (simd) => {
  const sizes = [1, 7, 15, 17, 72, 255, 256, 1000];

  it('geluTanh is within 4 ulp · (1 + |2u|) over [-14, 14]', () => {
    // Reference: the identity 0.5·(1 + tanh(u)) = 1/(1 + e^(-2u)) in float64 (checked against the
    // literal tanh form below). The float32 argument u carries ~2 ulp of rounding, which e^(-2u)
    // amplifies by |2u|; measured worst 1.6 ulp · (1 + |2u|). Results below 2^-120 (x < -10,
    // where e^(-2u) overflows float) are only checked to be that small.
    const n = 100_001;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = -14 + (28 * i) / (n - 1);
    const y = ops.geluTanh(x, simd);
    let worst = 0, literalGap = 0, tinyMax = 0;
    for (let i = 0; i < n; i++) {
      const ref = geluTanhRef(x[i]);
      literalGap = Math.max(literalGap, Math.abs(ref - geluTanhLiteral(x[i])));
      if (Math.abs(ref) < 2 ** -120) {
        tinyMax = Math.max(tinyMax, Math.abs(y[i]));
        continue;
      }
      const u = Math.sqrt(2 / Math.PI) * (x[i] + 0.044715 * x[i] ** 3);
      const err = Math.abs(y[i] - ref) / Math.abs(ref) / EPS32 / (1 + Math.abs(2 * u));
      if (!(err <= worst)) worst = err;
    }
    expect(literalGap).toBeLessThan(1e-14);
    expect(tinyMax).toBeLessThan(2 ** -119);
    expect(worst).toBeLessThanOrEqual(4);
    // Overflowing inputs saturate instead of producing NaN.
    expect(Array.from(ops.geluTanh(new Float32Array([1e30, -1e30, 3e38]), simd))).toEqual([1e30, -0, 3e38].map(Math.fround));
  });

  it('geglu, add and scale on odd sizes', () => {
    const rand = rng(300);
    for (const n of sizes) {
      const a = randomArray(rand, n, -6, 6), b = randomArray(rand, n, -6, 6);
      const g = ops.geglu(a, b, simd);
      // gelu's bound (|x| <= 6: 4 ulp · (1 + |2u|) <= 4 · 26 ulp) plus one rounding for the product.
      const want = Array.from(a, (x, i) => geluTanhRef(x) * b[i]);
      expect(worstRatio(g, want, 1e-30, 110 * EPS32)).toBeLessThanOrEqual(1);
      // add and scale round once, exactly like Math.fround of the float64 result.
      expect(ops.add(a, b, simd)).toEqual(Float32Array.from(a, (x, i) => x + b[i]));
      expect(ops.scale(a, 0.37, simd)).toEqual(Float32Array.from(a, (x) => x * Math.fround(0.37)));
    }
  });

  it('reject mismatched lengths and wrong types', () => {
    const a = new Float32Array(5);
    expect(() => ops.add(a, new Float32Array(4), simd)).toThrow(/a has 5 elements but b has 4/);
    expect(() => ops.geglu(a, new Float32Array(6), simd)).toThrow(/gate has 5 elements but up has 6/);
    expect(() => ops.geluTanh([1, 2] as unknown as Float32Array, simd)).toThrow(/x must be a Float32Array/);
    expect(() => ops.scale(a, 'x' as unknown as number, simd)).toThrow(/s must be a number/);
  });
});

describe.each(variants)('exp inside the attention softmax [%s]', (simd) => {
  it('two keys scored [0, x] for x in [-87, 0] give e^x / (1 + e^x) within 3 ulp', () => {
    // Query row i is x_i, the keys are 0 and 1 (head size 1, scale 1), so the scores are exactly
    // [0, x_i] and, with values 0 and 1, the output is p = e^x / (1 + e^x): exp's own error plus two
    // roundings. Measured worst 1.44 ulp (AVX2 polynomial) and 1.41 ulp (scalar expf).
    const n = 20_000;
    const q = Float32Array.from({ length: n }, (_, i) => (-87 * i) / n);
    const keys = Float32Array.of(0, 1);
    const out = ops.attention(q, keys, keys, { nQ: n, nKv: 2, nHeads: 1, nKvHeads: 1, headDim: 1, mask: 'full', scale: 1 }, simd);
    const want = Float64Array.from(q, (x) => Math.exp(x) / (1 + Math.exp(x)));
    expect(maxRelUlps(out, want)).toBeLessThanOrEqual(3);
  });
});

describe.each(variants)('ropeNeox [%s]', (simd) => {
  it('matches float64 at positions up to 2047, for several head sizes', () => {
    const rand = rng(500);
    for (const [nHeads, headDim] of [[1, 2], [8, 256], [3, 72], [2, 18], [1, 300]] as const) {
      const positions = Int32Array.from([0, 1, 2, 17, 255, 1000, 2000, 2047]);
      const ld = nHeads * headDim + 3;
      const x = randomArray(rand, positions.length * ld, -2, 2);
      const y = ops.ropeNeox(x, { nHeads, headDim, ld, positions, theta: 10000 }, simd);
      const ref = ropeNeoxRef(x, nHeads, headDim, ld, positions, 10000);
      // a·cos - b·sin with cos/sin rounded to float32 and two products and a sum rounded: at most
      // ~4 ulp of |a| + |b| <= 4 absolute (measured worst 2.5 eps); 32 eps absolute. A float32 angle
      // instead of a float64 one would be off by ~1e-4 rad at position 2000 and fail this.
      expect(worstRatio(y, ref, 32 * EPS32, 0)).toBeLessThanOrEqual(1);
    }
  });

  it('rejects odd head dims, short position arrays and bad theta', () => {
    const x = new Float32Array(16);
    const positions = Int32Array.from([0, 1]);
    expect(() => ops.ropeNeox(x, { nHeads: 1, headDim: 7, positions, theta: 1e4 }, simd)).toThrow(/headDim must be even/);
    expect(() => ops.ropeNeox(x, { nHeads: 1, headDim: 8, positions, theta: 0 }, simd)).toThrow(/theta must be > 0/);
    expect(() => ops.ropeNeox(x, { nHeads: 2, headDim: 8, ld: 16, positions, theta: 1e4 }, simd))
      .toThrow(/x has 16 elements, 2 rows of stride 16 need 32/);
    expect(() => ops.ropeNeox(x, { nHeads: 1, headDim: 8, positions: new Uint32Array(2) as unknown as Int32Array,
      theta: 1e4 }, simd)).toThrow(/positions must be a Int32Array/);
  });
});

describe.each(variants)('embedRows [%s]', (simd) => {
  it('gathers F32, F16 and BF16 rows exactly', () => {
    const rand = rng(600);
    for (const dim of [1, 7, 17, 72, 256]) {
      const rows = 13;
      const ids = Int32Array.from([0, 12, 5, 5, 1, 7, 12]);
      const f32 = randomArray(rand, rows * dim, -100, 100);
      const bits = Uint16Array.from({ length: rows * dim }, () => Math.floor(rand(0, 65536)));
      for (let i = 0; i < bits.length; i += 5) bits[i] &= 0x83ff;  // plenty of F16 subnormals and zeros
      for (const [type, table, value] of [
        ['f32', f32, (i: number) => f32[i]],
        ['f16', bits, (i: number) => f16Value(bits[i])],
        ['bf16', bits, (i: number) => bf16Value(bits[i])],
      ] as const) {
        const out = ops.embedRows(table, type, dim, ids, simd);
        const want = new Float32Array(ids.length * dim);
        ids.forEach((id, r) => {
          for (let i = 0; i < dim; i++) want[r * dim + i] = value(id * dim + i);
        });
        // Widening is exact, NaN payloads included up to quieting: compare as values.
        expect(out, `${type} dim ${dim}`).toEqual(want);
      }
    }
  });

  it('gathers quantized rows as the reference dequantizer reads them (the input embedding of a quantized token_embd)', () => {
    for (const [type, name] of [['q8_0', 'Q8_0'], ['q4_0', 'Q4_0'], ['q5_0', 'Q5_0'], ['q4_k', 'Q4_K'], ['q6_k', 'Q6_K']] as const) {
      const { block, bytes } = QUANT_TYPES[name];
      const rows = 13, dim = 2 * block;
      const table = adversarialBlocks(name, rows * 2, 601);
      const ids = Int32Array.from([0, 12, 5, 5, 1, 7, 12]);
      const all = referenceDequantize(name, table, rows * 2);
      const want = new Float32Array(ids.length * dim);
      ids.forEach((id, r) => want.set(all.subarray(id * dim, (id + 1) * dim), r * dim));
      expect(table.length).toBe(rows * 2 * bytes);
      expect(ops.embedRows(table, type, dim, ids, simd), type).toEqual(want);
    }
  });

  it('rejects out-of-range ids and mismatched tables', () => {
    const table = new Float32Array(12);
    expect(() => ops.embedRows(table, 'f32', 4, Int32Array.from([0, 3]), simd)).toThrow(/ids\[1\] = 3 is outside the table's 3 rows/);
    expect(() => ops.embedRows(table, 'f32', 4, Int32Array.from([-1]), simd)).toThrow(RangeError);
    expect(() => ops.embedRows(table, 'f32', 5, Int32Array.from([0]), simd)).toThrow(/not a multiple of dim 5/);
    expect(() => ops.embedRows(table, 'f16', 4, Int32Array.from([0]), simd)).toThrow(/f16 table must be a Uint16Array/);
    expect(() => ops.embedRows(new Uint16Array(4), 'q8' as ops.EmbedType, 4, Int32Array.from([0]), simd))
      .toThrow(/type must be 'f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q5_0', 'q4_k' or 'q6_k', got 'q8'/);
    expect(() => ops.embedRows(new Uint8Array(68), 'q8_0', 48, Int32Array.from([0]), simd)).toThrow(/not a multiple of dim 48/);
  });
});
