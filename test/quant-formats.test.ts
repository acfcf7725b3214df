// The native quantizers and dequantizers (native/quant) against an independent reading of the block
// formats (test/helpers/quant-ref.ts). Byte equality with llama.cpp itself: quant-oracle.test.ts.
import { describe, expect, it } from 'vitest';

import { loadTestAddon, native } from '../lib/native.js';
import { decodeF16 } from './helpers/float-ref.js';
import { adversarialBlocks, QUANT_TYPES, quantizeRows, referenceDequantize, testRows } from './helpers/quant-ref.js';
import type { QuantTypeName } from './helpers/quant-ref.js';

const testAddon = loadTestAddon();

const TYPES = Object.keys(QUANT_TYPES) as QuantTypeName[];
const K = 512;

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.length === ub.length && ua.every((v, i) => v === ub[i]);
}

/** sqrt(mean((x - y)²)) / sqrt(mean(x²)). */
function relativeRms(x: Float32Array, y: Float32Array): number {
  let err = 0;
  let ref = 0;
  for (let i = 0; i < x.length; i++) {
    err += (x[i]! - y[i]!) ** 2;
    ref += x[i]! ** 2;
  }
  return Math.sqrt(err / ref);
}

/** Relative RMS error of normal(0, 1) rows: a loose ceiling per type that any packing mistake breaks. */
const RMS_CEILING: Record<QuantTypeName, number> = { Q8_0: 0.01, Q4_0: 0.12, Q5_0: 0.06, Q4_K: 0.1, Q6_K: 0.03, Q8_K: 0.01 };

describe('dequantizers', () => {
  for (const type of TYPES) {
    it(`${type}: random quants with adversarial scales equal the independent reference`, () => {
      const blocks = 64;
      const bytes = adversarialBlocks(type, blocks, 0x51 + QUANT_TYPES[type].id);
      const ours = testAddon.dequantizeRows(QUANT_TYPES[type].id, bytes, 1, blocks * QUANT_TYPES[type].block);
      expect(sameBits(ours, referenceDequantize(type, bytes, blocks))).toBe(true);
    });
  }
});

describe('quantizers', () => {
  for (const type of TYPES) {
    it(`${type}: every test row quantizes to blocks the reference reads back close to the input`, async () => {
      for (const row of testRows(K, 7)) {
        const bytes = await quantizeRows(type, row.values);
        const blocks = K / QUANT_TYPES[type].block;
        const ours = testAddon.dequantizeRows(QUANT_TYPES[type].id, bytes, 1, K);
        expect(sameBits(ours, referenceDequantize(type, bytes, blocks)), row.name).toBe(true);
        expect(ours.every(Number.isFinite), row.name).toBe(true);
        if (row.name === 'all zero') expect(ours.every((v) => v === 0), row.name).toBe(true);
        if (row.name === 'normal(1)') expect(relativeRms(row.values, ours), row.name).toBeLessThan(RMS_CEILING[type]);
      }
    });
  }

  it('Q8_0 rounds each value to the nearest step of its block (half away from zero)', async () => {
    const values = Float32Array.from({ length: 32 }, (_, i) => (i - 16) * 0.5); // ties at every odd i
    values[0] = -127; // amax 127: d = 1, so every value is rounded to an integer
    const bytes = await quantizeRows('Q8_0', values);
    const q = new Int8Array(bytes.buffer, 2, 32);
    for (let i = 1; i < 32; i++) expect(q[i]).toBe(Math.sign(values[i]!) * Math.round(Math.abs(values[i]!)) + 0);
  });

  it('quantizes many rows in one call exactly as one row at a time', async () => {
    const rows = testRows(256, 3).slice(0, 8);
    const all = new Float32Array(8 * 256);
    rows.forEach((r, i) => all.set(r.values, i * 256));
    for (const type of TYPES) {
      const together = await quantizeRows(type, all, 256);
      const apart = await Promise.all(rows.map((r) => quantizeRows(type, r.values)));
      expect(Buffer.from(together).equals(Buffer.concat(apart)), type).toBe(true);
    }
  });

  it('F16 and BF16 sources give the bytes of their F32 values', async () => {
    const halves = Uint16Array.from({ length: 256 }, (_, i) => (i * 2654435761) & 0xbfff); // both signs, magnitudes below 2 in F16 and BF16
    const asF16 = Float32Array.from(halves, decodeF16);
    const asBF16 = new Float32Array(new Uint32Array(Array.from(halves, (h) => h << 16)).buffer);
    for (const [srcType, values] of [[1, asF16], [30, asBF16]] as const) {
      const dst = new Uint8Array(144);
      expect(await native.quantizeRowsAsync(12, new Uint8Array(halves.buffer), srcType, 1, 256, dst)).toBeNull();
      expect(Buffer.from(dst).equals(Buffer.from(await quantizeRows('Q4_K', values))), `srcType ${srcType}`).toBe(true);
    }
  });

  it('refuses NaN and infinity, naming the row and element', async () => {
    const values = new Float32Array(3 * 64).fill(0.5);
    values[64 + 17] = NaN;
    const dst = new Uint8Array(3 * 2 * 34);
    const src = new Uint8Array(values.buffer);
    expect(await native.quantizeRowsAsync(8, src, 0, 3, 64, dst)).toEqual({ row: 1, element: 17, what: 'NaN' });
    values[64 + 17] = 0;
    values[2 * 64 + 63] = -Infinity;
    expect(await native.quantizeRowsAsync(8, src, 0, 3, 64, dst)).toEqual({ row: 2, element: 63, what: 'infinity' });
  });

  it('refuses values whose block scale would overflow F16', async () => {
    const values = new Float32Array(512).fill(1);
    values[300] = 3e7; // Q8_0: d = 3e7 / 127 > 65504
    const problem = await native.quantizeRowsAsync(8, new Uint8Array(values.buffer), 0, 1, 512, new Uint8Array(16 * 34));
    expect(problem).toMatchObject({ row: 0, element: 288 });
    expect(problem!.what).toMatch(/F16 range/);
  });

  it('checks its arguments', async () => {
    const src = new Uint8Array(256 * 4);
    const call = (type: number, k: number, dst: Uint8Array, s = src) => native.quantizeRowsAsync(type, s, 0, 1, k, dst);
    expect(() => call(3, 256, new Uint8Array(20 * 8))).toThrow(/not a quantized type/);
    expect(() => call(8, 100, new Uint8Array(34))).toThrow(/not a positive multiple of Q8_0's block size 32/);
    expect(() => call(8, 256, new Uint8Array(10))).toThrow(/dst has 10 bytes, expected 272/);
    expect(() => call(8, 256, new Uint8Array(272), src.subarray(1, 1 + 256 * 4 - 1))).toThrow(/src has/);
    expect(() => native.quantizeRowsAsync(8, new Uint8Array(256 * 4 + 1).subarray(1), 0, 1, 256, new Uint8Array(272))).toThrow(/multiple of 4 bytes/);
    expect(() => testAddon.dequantizeRows(15, new Uint8Array(292), 2, 256)).toThrow(/src has 292 bytes, expected 584/);
  });
});
