import { readFileSync } from 'node:fs';
import os from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import { GGML_TYPES } from '../lib/gguf/ggml-types.js';
import { KERNEL_WEIGHT_TYPES } from '../lib/model/arch/table.js';
import { simdVariants } from '../lib/native.js';
import { geglu } from './helpers/kernels/ops.js';
import {
  gemm,
  gemmAsync,
  gemmGeglu,
  gemv,
  patchEmbed,
  poolSize,
  testSleepAsync,
  testPoolChurnAsync,
  timeMatmul,
  type MatmulArgs,
  type WeightType,
} from './helpers/kernels/matmul.js';
import {
  bf16ToNumber,
  encodeWeights,
  f16ToNumber,
  gammaF32,
  numberToBf16,
  numberToF16,
  randomF32,
  referenceMatmul,
  referencePatchEmbed,
  rng,
  worstRatio,
  type Reference,
  type WeightType as FloatWeightType,
  type Weights,
} from './helpers/reference.js';
import { adversarialBlocks, QUANT_TYPES, quantizeRows, referenceDequantize, type QuantTypeName } from './helpers/quant-ref.js';

const variants = simdVariants().filter((v) => v.supported).map((v) => v.name);
const weightTypes: FloatWeightType[] = ['f32', 'f16', 'bf16'];

// Tolerance for every matmul-like result: the kernels sum k float32 products (blocked, FMA or not)
// plus a bias, so |y − exact| ≤ γ(k+2)·(Σ|x·w| + |bias|) (see test/helpers/reference.ts). Inputs
// are float32 and the F16/BF16 weights are decoded exactly, so that rounding is the only error. The
// bound is rigorous (a correct kernel can never exceed it) yet far below the size of any indexing or
// conversion mistake, which shows up as an error comparable to a whole term or the whole sum.
function bound(ref: Reference, k: number): Float64Array {
  const g = gammaF32(k + 2);
  return ref.magnitude.map((mag) => g * mag);
}

interface Case {
  n: number;
  k: number;
  m: number;
  x: Float32Array;
  w: Weights;
  bias: Float32Array | null;
  ref: Reference;
}

const caseCache = new Map<string, Case>();

/** Random inputs for one shape and weight type, with their float64 reference (cached across variants). */
function makeCase(n: number, k: number, m: number, wtype: FloatWeightType, withBias: boolean): Case {
  const key = `${n},${k},${m},${wtype},${withBias}`;
  const cached = caseCache.get(key);
  if (cached) return cached;
  const random = rng(n * 1_000_003 + k * 1009 + m * 7 + (withBias ? 1 : 0));
  const x = randomF32(n * k, random);
  const w = encodeWeights(randomF32(m * k, random), wtype);
  const bias = withBias ? randomF32(m, random) : null;
  const c = { n, k, m, x, w, bias, ref: referenceMatmul(x, w.values, bias, n, k, m) };
  caseCache.set(key, c);
  return c;
}

function args(c: Case, simd: string): MatmulArgs {
  return { x: c.x, w: c.w.data, wtype: c.w.type, bias: c.bias, n: c.n, k: c.k, m: c.m, simd: simd as never };
}

// The required odd sizes (n = 1, 7, 257; k not a multiple of 8 or 16; m not a multiple of a panel),
// plus shapes that span several k slices, many column panels, and row-split tasks.
const ns = [1, 2, 3, 7, 257];
const ks = [1, 15, 17, 100, 1152];
const msizes = [1, 13, 33, 100];
const shapes: [number, number, number][] = [];
for (const n of ns) for (const k of ks) for (const m of msizes) shapes.push([n, k, m]);
shapes.push([300, 600, 70], [13, 2100, 260], [50, 300, 20], [6, 513, 48]);

/**
 * The GEMM with a GeGLU folded in (the model's feed-forward) gives, row by row, the bits of the two
 * steps apart — the variant's GEMM, then its geglu of the gate and that product — and leaves the gaps
 * between rows (ldy > m) as the gate had them.
 */
function expectFoldedGeglu(a: MatmulArgs, seed: number, label: string): void {
  const ldy = a.m + 5;
  const gate = randomF32((a.n - 1) * ldy + a.m, rng(seed));
  const up = gemm({ ...a, ldy });
  const folded = gemmGeglu({ ...a, ldy }, gate);
  expect(folded.length).toBe(gate.length);
  for (let i = 0; i < a.n; i++) {
    const row = (v: Float32Array) => v.slice(i * ldy, i * ldy + a.m);
    expect(row(folded), `${label}: row ${i}`).toEqual(geglu(row(gate), row(up), a.simd));
    if (i < a.n - 1) expect(folded.slice(i * ldy + a.m, (i + 1) * ldy), `${label}: gap after row ${i}`).toEqual(gate.slice(i * ldy + a.m, (i + 1) * ldy));
  }
}

describe('reference helpers', () => {
  it('F16 and BF16 encoders invert the exact decoders on every finite pattern', () => {
    const mismatches: string[] = [];
    for (let b = 0; b < 0x10000; b++) {
      const h = f16ToNumber(b);
      if (Number.isFinite(h) && numberToF16(h) !== b) mismatches.push(`f16 0x${b.toString(16)}`);
      const g = bf16ToNumber(b);
      if (Number.isFinite(g) && numberToBf16(g) !== b) mismatches.push(`bf16 0x${b.toString(16)}`);
    }
    expect(mismatches).toEqual([]);
    expect(f16ToNumber(0x3c00)).toBe(1);
    expect(f16ToNumber(0x0001)).toBe(2 ** -24);
    expect(f16ToNumber(0xfbff)).toBe(-65504);
    expect(bf16ToNumber(0x3f80)).toBe(1);
    expect(numberToF16(1 + 2 ** -11)).toBe(0x3c00); // a tie rounds to even
    expect(numberToF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });
});

describe.each(variants)('matmul kernels, %s variant', (simd) => {
  for (const wtype of weightTypes) {
    for (const kernel of ['gemm', 'gemv'] as const) {
      it(`${kernel} matches the float64 reference on ${shapes.length} shapes, ${wtype} weights`, () => {
        const run = kernel === 'gemm' ? gemm : gemv;
        shapes.forEach(([n, k, m], i) => {
          const c = makeCase(n, k, m, wtype, i % 2 === 0);
          const y = run(args(c, simd));
          expect(y.length).toBe(n * m);
          const worst = worstRatio(y, c.ref.y, bound(c.ref, k));
          if (worst.ratio > 1) {
            const at = worst.index;
            throw new Error(`${kernel} n=${n} k=${k} m=${m}: y[${Math.floor(at / m)}, ${at % m}] = ${y[at]}, ` +
              `expected ${c.ref.y[at]} (error ${worst.ratio.toFixed(2)}x the bound)`);
          }
        });
      });
    }
  }

  it('gemm folds a GeGLU into the gate with the bits of the GEMM and the geglu apart, every float type', () => {
    const foldShapes: [number, number, number][] = [[1, 17, 13], [7, 100, 33], [9, 1152, 100], [300, 600, 70], [13, 2100, 260]];
    for (const wtype of weightTypes) {
      foldShapes.forEach(([n, k, m], i) => expectFoldedGeglu(args(makeCase(n, k, m, wtype, i % 2 === 1), simd), i, `${wtype} n=${n} k=${k} m=${m}`));
    }
  });

  it('gemv gives each row of x the bits it gives that row alone (batched decoding = one at a time)', () => {
    for (const [n, k, m] of [[7, 1152, 100], [8, 17, 33], [5, 2100, 13]] as const) {
      const c = makeCase(n, k, m, 'f16', true);
      const all = gemv(args(c, simd));
      for (let i = 0; i < n; i++) {
        const alone = gemv({ ...args(c, simd), x: c.x.subarray(i * k, (i + 1) * k), n: 1 });
        expect(all.subarray(i * m, (i + 1) * m), `row ${i} of n=${n}, k=${k}, m=${m}`).toEqual(alone);
      }
    }
  });

  it('gemm and gemv agree within their combined bounds', () => {
    for (const [n, k, m] of [[1, 1152, 100], [3, 17, 33], [7, 100, 13]] as const) {
      const c = makeCase(n, k, m, 'f16', true);
      const a = gemm(args(c, simd));
      const b = gemv(args(c, simd));
      const twice = bound(c.ref, k).map((v) => 2 * v); // each is within one bound of the exact value
      expect(worstRatio(a, Float64Array.from(b), twice).ratio).toBeLessThanOrEqual(1);
    }
  });

  it('reads and writes strided rows (ldx > k, ldy > m) and leaves the gaps alone', () => {
    const random = rng(42);
    const [n, k, m, ldx, ldy] = [9, 37, 21, 45, 30];
    const x = randomF32((n - 1) * ldx + k, random);
    const w = encodeWeights(randomF32(m * k, random), 'f16');
    const ref = referenceMatmul(x, w.values, null, n, k, m, ldx);
    for (const run of [gemm, gemv]) {
      const y = run({ x, w: w.data, wtype: 'f16', n, k, m, ldx, ldy, simd: simd as never });
      expect(y.length).toBe((n - 1) * ldy + m);
      const rows = new Float32Array(n * m);
      for (let i = 0; i < n; i++) {
        rows.set(y.subarray(i * ldy, i * ldy + m), i * m);
        if (i < n - 1) expect([...y.subarray(i * ldy + m, (i + 1) * ldy)]).toEqual(new Array(ldy - m).fill(0));
      }
      expect(worstRatio(rows, ref.y, bound(ref, k)).ratio).toBeLessThanOrEqual(1);
    }
  });

  it('writes every column count across panel edges exactly once, with bias, from one k slice or several', () => {
    // GEMM's last k slice writes y straight from the micro-kernel's registers: whole vectors, then a
    // partial one (a lane mask) in the last panel of y. m = 1..65 puts every column count in the last
    // panel of 8, 16 or 32 columns (the panel widths of the variants); ldy > m leaves a gap after each
    // row that must stay untouched. k = 40 is one slice, k = 450 three (the last one partial).
    const random = rng(9);
    for (const k of [40, 450]) {
      for (const n of [1, 13, 25]) {
        const x = randomF32(n * k, random);
        for (let m = 1; m <= 65; m++) {
          const w = encodeWeights(randomF32(m * k, random), 'f16');
          const bias = randomF32(m, random);
          const ref = referenceMatmul(x, w.values, bias, n, k, m);
          const ldy = m + 3;
          const y = gemm({ x, w: w.data, wtype: 'f16', bias, n, k, m, ldy, simd: simd as never });
          const rows = new Float32Array(n * m);
          for (let i = 0; i < n; i++) {
            rows.set(y.subarray(i * ldy, i * ldy + m), i * m);
            if (i < n - 1 && y.subarray(i * ldy + m, (i + 1) * ldy).some((v) => v !== 0)) {
              throw new Error(`n=${n} k=${k} m=${m}: the gap after row ${i} was written`);
            }
          }
          const worst = worstRatio(rows, ref.y, bound(ref, k));
          if (worst.ratio > 1) {
            throw new Error(`n=${n} k=${k} m=${m}: y[${Math.floor(worst.index / m)}, ${worst.index % m}] off by ` +
              `${worst.ratio.toFixed(2)}x the bound`);
          }
        }
      }
    }
  });

  it('converts every F16 and BF16 bit pattern exactly, in vector bodies and in tails', () => {
    // x = identity: y[i, j] = w[j, i] + 15 exact zeros, so every output must equal one stored weight
    // bit for bit. k = 16 runs the vector conversion (8 or 16 lanes); k = 1 the scalar tail path,
    // which also carries infinities and NaNs through (x = [1]).
    const identity = new Float32Array(16 * 16);
    for (let i = 0; i < 16; i++) identity[i * 16 + i] = 1;
    for (const wtype of ['f16', 'bf16'] as const) {
      const decode = wtype === 'f16' ? f16ToNumber : bf16ToNumber;
      const all = Uint16Array.from({ length: 0x10000 }, (_, i) => i);
      const finite = all.filter((b) => Number.isFinite(decode(b)));
      const rows = Math.floor(finite.length / 16);
      const w = finite.subarray(0, rows * 16);
      for (const run of [gemm, gemv]) {
        const y = run({ x: identity, w, wtype, n: 16, k: 16, m: rows, simd: simd as never });
        for (let j = 0; j < rows; j++)
          for (let i = 0; i < 16; i++)
            if (y[i * rows + j] !== decode(w[j * 16 + i]!)) {
              throw new Error(`${wtype} bits 0x${w[j * 16 + i]!.toString(16)}: got ${y[i * rows + j]}`);
            }
        const tail = run({ x: new Float32Array([1]), w: all, wtype, n: 1, k: 1, m: all.length, simd: simd as never });
        for (let b = 0; b < all.length; b++) {
          const expected = decode(b);
          if (!(tail[b] === expected || (Number.isNaN(expected) && Number.isNaN(tail[b]!)))) {
            throw new Error(`${wtype} bits 0x${b.toString(16)} (k = 1): got ${tail[b]}, expected ${expected}`);
          }
        }
      }
    }
  });

  for (const wtype of weightTypes) {
    it(`patch embedding matches a direct convolution, ${wtype} weights`, () => {
      const random = rng(7);
      // [channels, height, width, patch, hidden]: the SigLIP geometry, a grid that does not divide
      // evenly (Conv2d drops the remainder), and patch = 1.
      for (const [channels, height, width, patch, hidden] of [
        [3, 224, 224, 14, 40], [3, 30, 44, 14, 17], [2, 5, 3, 1, 3], [1, 14, 14, 14, 1],
      ] as const) {
        const pixels = randomF32(channels * height * width, random);
        const weight = encodeWeights(randomF32(hidden * channels * patch * patch, random), wtype);
        const bias = randomF32(hidden, random);
        const ref = referencePatchEmbed(pixels, channels, height, width, patch, weight.values, bias, hidden);
        const y = patchEmbed({ pixels, channels, height, width, patch, weight: weight.data, wtype, bias, hidden,
          simd: simd as never });
        expect(y.length).toBe(ref.y.length);
        expect(worstRatio(y, ref.y, bound(ref, channels * patch * patch)).ratio).toBeLessThanOrEqual(1);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Quantized weights (llama.cpp's blocks): x is quantized on the fly to Q8_0 (32-element types) or Q8_K
// (256-element types) by the reference quantizer's rules, so the exact result is the float64 product of
// the dequantized weights and the dequantized quantized x. The kernels sum each block's products as an
// exact integer and combine the block sums in float32: within (blocks + 16) · 2⁻²³ · Σ|terms| of it
// (native/kernels/quant_dot.h). The SIMD GEMM gives the scalar reference's bits (quant_matmul.inc).
// ---------------------------------------------------------------------------------------------
const quantTypes = ['q8_0', 'q4_0', 'q5_0', 'q4_k', 'q6_k'] as const;
type QuantWeight = (typeof quantTypes)[number];
const QUANT_NAME: Record<QuantWeight, QuantTypeName> = { q8_0: 'Q8_0', q4_0: 'Q4_0', q5_0: 'Q5_0', q4_k: 'Q4_K', q6_k: 'Q6_K' };

interface QuantCase {
  n: number;
  k: number;
  m: number;
  x: Float32Array;
  w: Uint8Array;
  bias: Float32Array | null;
  ref: Reference;
  bound: Float64Array;
}

/** Weights quantized from random rows, every third row of random bytes with adversarial scales. */
async function makeQuantCase(type: QuantWeight, n: number, k: number, m: number, seed: number): Promise<QuantCase> {
  const name = QUANT_NAME[type];
  const { block, bytes } = QUANT_TYPES[name];
  const random = rng(seed);
  const x = randomF32(n * k, random);
  const rowBytes = (k / block) * bytes;
  const w = await quantizeRows(name, randomF32(m * k, random), k);
  for (let j = 0; j < m; j += 3) w.set(adversarialBlocks(name, k / block, seed + j), j * rowBytes);
  const bias = seed % 2 === 0 ? randomF32(m, random) : null;
  const partner: QuantTypeName = block === 32 ? 'Q8_0' : 'Q8_K';
  const xq = referenceDequantize(partner, await quantizeRows(partner, x, k), (n * k) / QUANT_TYPES[partner].block);
  const ref = referenceMatmul(xq, Float64Array.from(referenceDequantize(name, w, (m * k) / block)), bias, n, k, m);
  const bound = ref.magnitude.map((mag) => (k / block + 16) * 2 ** -23 * mag);
  return { n, k, m, x, w, bias, ref, bound };
}

function quantArgs(c: QuantCase, wtype: QuantWeight, simd: string): MatmulArgs {
  return { x: c.x, w: c.w, wtype, bias: c.bias, n: c.n, k: c.k, m: c.m, simd: simd as never };
}

describe('quantized matmul kernels', () => {
  const cases = new Map<QuantWeight, QuantCase[]>();
  beforeAll(async () => {
    for (const type of quantTypes) {
      const b = QUANT_TYPES[QUANT_NAME[type]].block;
      // One block to several slices of k (the GEMM's slices are 512 elements); n from one row to
      // several row tiles; m off the panel widths.
      const shapes: [number, number, number][] = b === 32
        ? [[1, 32, 13], [3, 96, 33], [8, 544, 100], [9, 1056, 17], [40, 64, 70], [257, 160, 37]]
        : [[1, 256, 13], [3, 512, 33], [8, 768, 40], [9, 1280, 17], [257, 256, 20]];
      cases.set(type, await Promise.all(shapes.map(([n, k, m], i) => makeQuantCase(type, n, k, m, 100 * i + b))));
    }
  }, 120_000);

  describe.each(variants)('%s variant', (simd) => {
    for (const type of quantTypes) {
      it(`${type}: gemm and gemv match the float64 reference of the dequantized operands`, () => {
        for (const c of cases.get(type)!) {
          for (const [kernel, run] of [['gemm', gemm], ['gemv', gemv]] as const) {
            const y = run(quantArgs(c, type, simd));
            expect(y.length).toBe(c.n * c.m);
            const worst = worstRatio(y, c.ref.y, c.bound);
            if (worst.ratio > 1) {
              const at = worst.index;
              throw new Error(`${kernel} n=${c.n} k=${c.k} m=${c.m}: y[${Math.floor(at / c.m)}, ${at % c.m}] = ${y[at]}, ` +
                `expected ${c.ref.y[at]} (error ${worst.ratio.toFixed(2)}x the bound)`);
            }
          }
        }
      });

      it(`${type}: gemm folds a GeGLU into the gate with the bits of the GEMM and the geglu apart`, () => {
        cases.get(type)!.forEach((c, i) => expectFoldedGeglu(quantArgs(c, type, simd), i, `n=${c.n} k=${c.k} m=${c.m}`));
      });

      it(`${type}: gemm gives the scalar reference's bits; gemv gives each row of x the bits it gives that row alone`, () => {
        for (const c of cases.get(type)!) {
          expect(gemm(quantArgs(c, type, simd)), `gemm n=${c.n} k=${c.k} m=${c.m}`).toEqual(gemm(quantArgs(c, type, 'scalar')));
          const all = gemv(quantArgs(c, type, simd));
          for (let i = 0; i < Math.min(c.n, 9); i++) {
            const alone = gemv({ ...quantArgs(c, type, simd), x: c.x.subarray(i * c.k, (i + 1) * c.k), n: 1 });
            expect(all.subarray(i * c.m, (i + 1) * c.m), `gemv row ${i} of n=${c.n}, k=${c.k}`).toEqual(alone);
          }
        }
      });
    }
  });
});

describe('matmul argument errors', () => {
  const x = new Float32Array(6);
  const w = new Float32Array(6);
  const ok: MatmulArgs = { x, w, wtype: 'f32', n: 2, k: 3, m: 2 };

  it('rejects bad sizes, lengths and types with a message, for gemm and gemv alike', () => {
    for (const run of [gemm, gemv]) {
      expect(run(ok)).toHaveLength(4);
      expect(() => run({ ...ok, k: 0 })).toThrow(RangeError);
      expect(() => run({ ...ok, k: 0 })).toThrow(/k must be at least 1/);
      expect(() => run({ ...ok, n: 0 })).toThrow(/n must be at least 1/);
      expect(() => run({ ...ok, m: -1 })).toThrow(/m must be a non-negative integer/);
      expect(() => run({ ...ok, m: 1.5 })).toThrow(RangeError);
      expect(() => run({ ...ok, n: NaN })).toThrow(RangeError);
      expect(() => run({ ...ok, n: 3 })).toThrow(/x has 6 elements, needs at least 9/);
      expect(() => run({ ...ok, m: 3 })).toThrow(/w has 6 elements, expected 9/);
      expect(() => run({ ...ok, w: new Float32Array(7) })).toThrow(/w has 7 elements, expected 6/);
      expect(() => run({ ...ok, x: new Float32Array(0) })).toThrow(RangeError);
      expect(() => run({ ...ok, wtype: 'f16' })).toThrow(TypeError); // a Float32Array is not F16 bits
      expect(() => run({ ...ok, wtype: 'f16' })).toThrow(/w must be a Uint16Array/);
      expect(() => run({ ...ok, wtype: 'q4_1' as never })).toThrow(/wtype must be 'f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q5_0', 'q4_k' or 'q6_k'/);
      expect(() => run({ ...ok, wtype: 'q8_0', w: new Uint8Array(34) })).toThrow(/k must be a multiple of Q8_0's block of 32/);
      expect(() => run({ ...ok, wtype: 'q8_0', k: 32, x: new Float32Array(64), w: new Uint8Array(35) })).toThrow(/w is not whole Q8_0 blocks/);
      expect(() => run({ ...ok, x: new Float64Array(6) as never })).toThrow(/x must be a Float32Array/);
      expect(() => run({ ...ok, bias: new Float32Array(3) })).toThrow(/bias has 3 elements, expected 2/);
      expect(() => run({ ...ok, bias: [1, 2] as never })).toThrow(/bias must be a Float32Array/);
      expect(() => run({ ...ok, ldx: 2 })).toThrow(/ldx must be at least k/);
      expect(() => run({ ...ok, ldy: 1 })).toThrow(/ldy must be at least m/);
      expect(() => run({ ...ok, simd: 'sse9' as never })).toThrow(/unknown SIMD variant 'sse9'/);
      // Sizes whose products overflow, or whose output would be huge, fail before any allocation.
      expect(() => run({ ...ok, n: 2 ** 52, k: 2 ** 52 })).toThrow(/too large/);
      expect(() => run({ ...ok, m: 2 ** 40, k: 2 ** 20 })).toThrow(/too large/);
      expect(() => run({ x: new Float32Array(2 ** 20), w: new Float32Array(1), wtype: 'f32', n: 2 ** 20, k: 1,
        m: 1, ldy: 2 ** 20 })).toThrow(/exceeds the limit/);
    }
    for (const v of simdVariants().filter((v) => !v.supported)) {
      expect(() => gemm({ ...ok, simd: v.name })).toThrow(/which this CPU does not have/);
    }
    expect(gemmGeglu(ok, new Float32Array(4))).toHaveLength(4);
    expect(() => gemmGeglu(ok, new Float32Array(3))).toThrow(/gate has 3 elements, needs at least 4/);
    expect(() => gemmGeglu(ok, new Float32Array(5))).toThrow(/gate must have \(n - 1\) \* ldy \+ m = 4 elements/);
  });

  it('runs exactly the weight types the model files may hold (KERNEL_WEIGHT_TYPES, lib/model/arch/table.ts)', () => {
    const runnable = Object.values(GGML_TYPES).filter((t) => {
      const k = t.blockSize;
      const w = t.blockSize === 1 ? (t.typeSize === 4 ? new Float32Array(1) : new Uint16Array(1)) : new Uint8Array(t.typeSize);
      try {
        gemm({ x: new Float32Array(k), w, wtype: t.name.toLowerCase() as WeightType, n: 1, k, m: 1 });
        return true;
      } catch (err) {
        expect((err as Error).message).toMatch(/wtype must be/);
        return false;
      }
    });
    expect(runnable.map((t) => t.name).sort()).toEqual([...KERNEL_WEIGHT_TYPES].sort());
  });

  it('timeMatmul (the benchmarks\' back-to-back timer) validates the same arguments and times every run', () => {
    for (const kind of ['gemm', 'gemv'] as const) {
      const ms = timeMatmul(kind, 3, ok);
      expect(ms).toBeInstanceOf(Float64Array);
      expect(ms).toHaveLength(3);
      for (const t of ms) expect(t >= 0 && t < 10_000).toBe(true);
      expect(() => timeMatmul(kind, 1, { ...ok, k: 0 })).toThrow(/k must be at least 1/);
      expect(() => timeMatmul(kind, 1, { ...ok, n: 3 })).toThrow(/x has 6 elements, needs at least 9/);
      expect(() => timeMatmul(kind, 1, { ...ok, wtype: 'f16' })).toThrow(/w must be a Uint16Array/);
      expect(() => timeMatmul(kind, 0, ok)).toThrow(/reps must be at least 1/);
      expect(() => timeMatmul(kind, 10_001, ok)).toThrow(/reps must be at most 10000/);
    }
    expect(() => timeMatmul('gemx' as never, 1, ok)).toThrow(/kind must be 'gemm' or 'gemv'/);
  });

  it('rejects bad patch-embedding arguments', () => {
    const good = { pixels: new Float32Array(3 * 4 * 4), channels: 3, height: 4, width: 4, patch: 2,
      weight: new Float32Array(5 * 3 * 2 * 2), wtype: 'f32' as const, hidden: 5 };
    expect(patchEmbed(good)).toHaveLength(4 * 5);
    expect(() => patchEmbed({ ...good, patch: 0 })).toThrow(/patch must be at least 1/);
    expect(() => patchEmbed({ ...good, patch: 5 })).toThrow(/patch must not exceed/);
    expect(() => patchEmbed({ ...good, pixels: new Float32Array(47) })).toThrow(/pixels has 47 elements/);
    expect(() => patchEmbed({ ...good, hidden: 6 })).toThrow(/weight has 60 elements, expected 72/);
    expect(() => patchEmbed({ ...good, bias: new Float32Array(4) })).toThrow(/bias has 4 elements/);
    expect(() => patchEmbed({ ...good, channels: 2 ** 31 })).toThrow(/channels is too large/);
    expect(() => patchEmbed({ ...good, wtype: 'bf16' })).toThrow(/weight must be a Uint16Array/);
  });
});

describe('thread pool and async execution', () => {
  it('sizes the shared pool to the physical cores', () => {
    const n = poolSize();
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(os.cpus().length);
    if (process.platform === 'linux') {
      // Independent count: unique (physical id, core id) pairs in /proc/cpuinfo.
      const cores = new Set<string>();
      let physical = '';
      for (const line of readFileSync('/proc/cpuinfo', 'utf8').split('\n')) {
        const [key, value] = line.split(':').map((s) => s.trim());
        if (key === 'physical id') physical = value!;
        if (key === 'core id') cores.add(`${physical}/${value}`);
      }
      if (cores.size > 0 && os.availableParallelism() === os.cpus().length) expect(n).toBe(cores.size);
    }
  });

  it('survives thousands of back-to-back parallel regions, sync and async interleaved', async () => {
    // Each call is split into several pool tasks (1 MB of weights); a lost wake-up or a task handed
    // out twice would hang or corrupt results.
    const c = makeCase(2, 1024, 256, 'f32', true);
    const expected = gemv(args(c, variants[0]!));
    const pending: Promise<Float32Array>[] = [];
    for (let i = 0; i < 2000; i++) {
      const y = gemv(args(c, variants[0]!));
      if (i % 100 === 0) pending.push(gemmAsync(args(c, variants[0]!)));
      if (y.some((v, j) => v !== expected[j])) throw new Error(`call ${i} differs`);
    }
    const asyncResults = await Promise.all(pending);
    const reference = gemm(args(c, variants[0]!));
    for (const y of asyncResults) expect(y).toEqual(reference);
  });

  it('gemmAsync returns what gemm returns, and keeps the event loop turning meanwhile', async () => {
    const c = makeCase(257, 1152, 100, 'f16', true);
    for (const simd of variants) {
      let ticks = 0;
      let running = true;
      const tick = (): void => {
        ticks++;
        if (running) setImmediate(tick);
      };
      setImmediate(tick);
      const y = await gemmAsync(args(c, simd));
      running = false;
      expect(y).toEqual(gemm(args(c, simd))); // same kernel, same blocking: bit-identical
      expect(ticks).toBeGreaterThan(0); // the loop ran while the kernel was busy on a worker thread
    }
  });

  it('sleeping jobs leave the event loop free, and work errors become rejections', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const times = await testSleepAsync(100);
    clearInterval(timer);
    expect(times.end - times.start).toBeGreaterThanOrEqual(99);
    expect(ticks).toBeGreaterThan(5); // a blocked loop would not have run the 1 ms timer at all
    await expect(testSleepAsync(1, 'work failed: disk on fire')).rejects.toThrow('work failed: disk on fire');
    await expect(gemmAsync({ x: new Float32Array(1), w: new Float32Array(1), wtype: 'f32', n: 1, k: 0, m: 1 }))
      .rejects.toThrow(/k must be at least 1/);
  });

  it('pools destroyed right after creation shut down (workers that have not started yet see the stop)', async () => {
    // Before the fix, about one pool in a few hundred hung in its destructor on this machine. The
    // deadline follows the pace of 100 pools, since creating threads is far slower under emulation (qemu).
    const t0 = performance.now();
    await testPoolChurnAsync(100, 3);
    const deadline = Math.max(20_000, 60 * (performance.now() - t0));
    const churn = testPoolChurnAsync(3000, 3);
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('a pool did not shut down')), deadline));
    await Promise.race([churn, timeout]);
  });
});
