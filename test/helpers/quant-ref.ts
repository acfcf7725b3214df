/**
 * An independent reading of llama.cpp's block formats, for tests: dequantizers written from the layout
 * descriptions (in float32 arithmetic, as ggml computes), and the random and adversarial inputs the
 * quantizer tests share.
 */
import { native } from '../../lib/native.js';
import { seededRandom } from '../../lib/model/sampling.js';
import { decodeF16, refF16Bits } from './float-ref.js';

/** The quantized types under test: ggml id, block elements, block bytes. */
export const QUANT_TYPES = {
  Q8_0: { id: 8, block: 32, bytes: 34 },
  Q4_0: { id: 2, block: 32, bytes: 18 },
  Q5_0: { id: 6, block: 32, bytes: 22 },
  Q4_K: { id: 12, block: 256, bytes: 144 },
  Q6_K: { id: 14, block: 256, bytes: 210 },
  Q8_K: { id: 15, block: 256, bytes: 292 },
} as const;
export type QuantTypeName = keyof typeof QUANT_TYPES;

const f = Math.fround;

/** Dequantizes `blocks` whole blocks of `type` from `bytes` (little-endian, as in GGUF). */
export function referenceDequantize(type: QuantTypeName, bytes: Uint8Array, blocks: number): Float32Array {
  const { block, bytes: size } = QUANT_TYPES[type];
  const out = new Float32Array(blocks * block);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const at = b * size;
    const y = out.subarray(b * block, (b + 1) * block);
    const u8 = (i: number) => bytes[at + i]!;
    const i8 = (i: number) => view.getInt8(at + i);
    const half = (i: number) => decodeF16(view.getUint16(at + i, true));
    switch (type) {
      case 'Q8_0': {
        const d = half(0);
        for (let j = 0; j < 32; j++) y[j] = f(i8(2 + j) * d);
        break;
      }
      case 'Q4_0':
      case 'Q5_0': {
        // Element j: the low nibble of byte j (j < 16) or the high nibble of byte j - 16; Q5_0 adds
        // bit j of the 32-bit qh as bit 4 and centres on 16 instead of 8.
        const d = half(0);
        const five = type === 'Q5_0';
        const qh = five ? view.getUint32(at + 2, true) : 0;
        const qs = five ? 6 : 2;
        for (let j = 0; j < 32; j++) {
          const nibble = j < 16 ? u8(qs + j) & 15 : u8(qs + j - 16) >> 4;
          const q = five ? (nibble | (((qh >>> j) & 1) << 4)) - 16 : nibble - 8;
          y[j] = f(q * d);
        }
        break;
      }
      case 'Q4_K': {
        // 8 sub-blocks of 32 with 6-bit scale and min; for j < 4 the low 6 bits of bytes j and j + 4;
        // for j >= 4 a low nibble from byte j + 4 and 2 high bits from the top of bytes j - 4 / j.
        const d = half(0);
        const dmin = half(2);
        const sc = (i: number) => u8(4 + i);
        for (let j = 0; j < 8; j++) {
          const scale = j < 4 ? sc(j) & 63 : (sc(j + 4) & 15) | ((sc(j - 4) >> 6) << 4);
          const min = j < 4 ? sc(j + 4) & 63 : (sc(j + 4) >> 4) | ((sc(j) >> 6) << 4);
          const dl = f(d * scale);
          const ml = f(dmin * min);
          const group = j >> 1;
          for (let l = 0; l < 32; l++) {
            const byte = u8(16 + 32 * group + l);
            const q = j % 2 === 0 ? byte & 15 : byte >> 4;
            y[32 * j + l] = f(f(dl * q) - ml);
          }
        }
        break;
      }
      case 'Q6_K': {
        // Element e of each half (h = e / 128, i = e % 128): low nibble from ql[64h + i % 64] (low or
        // high half of the byte by i / 64), 2 high bits from qh[32h + i % 32] at bit 2·(i / 32).
        const d = half(208);
        for (let e = 0; e < 256; e++) {
          const h = e >> 7;
          const i = e & 127;
          const low = (u8(64 * h + (i & 63)) >> (i < 64 ? 0 : 4)) & 15;
          const high = (u8(128 + 32 * h + (i & 31)) >> (2 * (i >> 5))) & 3;
          const q = (low | (high << 4)) - 32;
          y[e] = f(f(d * i8(192 + (e >> 4))) * q);
        }
        break;
      }
      case 'Q8_K': {
        const d = view.getFloat32(at, true);
        for (let j = 0; j < 256; j++) y[j] = f(d * i8(4 + j));
        break;
      }
    }
  }
  return out;
}

/** Rows of `k` values quantized to `type` by the native reference quantizer (native/quant). */
export async function quantizeRows(type: QuantTypeName, values: Float32Array, k = values.length): Promise<Uint8Array> {
  const { id, block, bytes } = QUANT_TYPES[type];
  const rows = values.length / k;
  const dst = new Uint8Array((rows * k * bytes) / block);
  const src = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const problem = await native.quantizeRowsAsync(id, src, 0, rows, k, dst);
  if (problem) throw new Error(`quantizeRows ${type}: row ${problem.row} element ${problem.element}: ${problem.what}`);
  return dst;
}

/** Byte offsets of the F16 scale fields in a block of each type. */
export const F16_FIELDS: Record<QuantTypeName, number[]> = { Q8_0: [0], Q4_0: [0], Q5_0: [0], Q4_K: [0, 2], Q6_K: [208], Q8_K: [] };

/** Scale values the adversarial blocks use: zero, tiny subnormal, negative, the largest finite, ordinary. */
export const ADVERSARIAL_SCALES = [0, 5.960464477539063e-8, 3.0e-6, -1.5, -65504, 65504, 0.0123, 1];

/**
 * Blocks of random bytes whose F16 scales take each adversarial value in turn (and, for Q8_K, an F32
 * scale), so every bit pattern of the quants and extreme scales are exercised.
 */
export function adversarialBlocks(type: QuantTypeName, count: number, seed: number): Uint8Array {
  const { bytes: size } = QUANT_TYPES[type];
  const out = new Uint8Array(count * size);
  const random = seededRandom(seed);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(random() * 256);
  const view = new DataView(out.buffer);
  for (let b = 0; b < count; b++) {
    const scale = ADVERSARIAL_SCALES[b % ADVERSARIAL_SCALES.length]!;
    for (const [n, at] of F16_FIELDS[type].entries()) view.setUint16(b * size + at, refF16Bits(n === 0 ? scale : -scale / 3), true);
    if (type === 'Q8_K') view.setFloat32(b * size, scale * 1e-3, true);
  }
  return out;
}

/** A named F32 row for the quantizers. */
export interface TestRow {
  name: string;
  values: Float32Array;
}

/** Normal samples N(0, std²) by Box–Muller. */
function normal(random: () => number, std: number): () => number {
  return () => std * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/**
 * Random and adversarial rows of `k` elements (a multiple of 256): ordinary weights at several scales,
 * all-zero, the largest F16 magnitudes, F32 and F16 subnormals, rows whose largest value is negative or
 * positive (the sign of the stored scale), a single outlier, constant rows, and blocks of each kind side
 * by side.
 */
export function testRows(k: number, seed: number): TestRow[] {
  const random = seededRandom(seed);
  const rows: TestRow[] = [];
  const add = (name: string, fill: (i: number) => number) => rows.push({ name, values: Float32Array.from({ length: k }, (_, i) => fill(i)) });
  for (const std of [0.02, 1, 300]) {
    const next = normal(random, std);
    add(`normal(${std})`, () => next());
  }
  add('all zero', () => 0);
  add('±65504', () => (random() < 0.5 ? 65504 : -65504));
  add('65504 and small', (i) => (i % 37 === 0 ? 65504 : random() - 0.5));
  add('F32 subnormal', () => (random() - 0.5) * 2e-39);
  add('F16 subnormal range', () => (random() - 0.5) * 1e-5);
  add('tiny (1e-9)', () => (random() - 0.5) * 1e-9);
  const small = normal(random, 0.01);
  add('largest negative', (i) => (i % 32 === 5 ? -1 : small()));
  add('largest positive', (i) => (i % 32 === 5 ? 1 : small()));
  add('all positive', () => random());
  add('all negative', () => -random());
  add('single outlier', (i) => (i === Math.floor(k / 3) ? 1000 : small()));
  add('constant 0.37', () => 0.37);
  add('constant -2', () => -2);
  add('ties ±x.5 of the scale', (i) => ((i % 17) - 8) * 0.5 + (i % 32 === 0 ? 8 : 0));
  const blockKinds = [() => 0, () => small(), () => 65504 * (random() - 0.5), () => 1e-7 * random(), () => 3.25];
  add('mixed blocks', (i) => blockKinds[Math.floor(i / 32) % blockKinds.length]!());
  return rows;
}
