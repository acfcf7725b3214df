import { describe, expect, it } from 'vitest';
import { convertElements, f16BitsToF32, f32BitsToBF16, f32BitsToF16 } from '../lib/convert/dtype.js';
import {
  bitsOfF32, decodeBF16, decodeF16, edgeBits, f32FromBits, isNaNBF16, isNaNF16, refBF16Bits, refF16Bits,
} from './helpers/float-ref.js';
import { prng } from './helpers/hf-checkpoint.js';

/** Random F32 bit patterns spread over every exponent, plus the edge cases. */
function sampleBits(n: number, seed: number): Uint32Array {
  const rand = prng(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 2 ** 32) >>> 0;
  const edges = edgeBits();
  out.set(edges);
  // Values right around the F16 range, where rounding decisions matter most.
  for (let i = edges.length; i < n / 2; i++) {
    const sign = rand() < 0.5 ? 0x80000000 : 0;
    const exp = 100 + Math.floor(rand() * 45); // 2^-27 .. 2^17
    out[i] = (sign | (exp << 23) | Math.floor(rand() * 0x800000)) >>> 0;
  }
  return out;
}

describe('F32 → F16 / BF16 rounding', () => {
  const bits = sampleBits(200_000, 7);

  it('F16 is round-to-nearest-even, with subnormals, overflow to inf and NaN kept', () => {
    let checked = 0;
    for (const b of bits) {
      const got = f32BitsToF16(b);
      const want = refF16Bits(f32FromBits(b));
      if (isNaNF16(want)) expect(isNaNF16(got), `bits ${b.toString(16)}`).toBe(true);
      else if (got !== want) expect(got.toString(16), `bits ${b.toString(16)} (${f32FromBits(b)})`).toBe(want.toString(16));
      checked++;
    }
    expect(checked).toBe(bits.length);
  });

  it('BF16 is round-to-nearest-even, overflow to inf and NaN kept', () => {
    for (const b of bits) {
      const got = f32BitsToBF16(b);
      const want = refBF16Bits(f32FromBits(b));
      if (isNaNBF16(want)) expect(isNaNBF16(got), `bits ${b.toString(16)}`).toBe(true);
      else if (got !== want) expect(got.toString(16), `bits ${b.toString(16)} (${f32FromBits(b)})`).toBe(want.toString(16));
    }
  });

  it('spot values', () => {
    expect(f32BitsToF16(bitsOfF32(65520))).toBe(0x7c00); // the tie above 65504 goes to inf (even)
    expect(f32BitsToF16(bitsOfF32(Math.fround(65519.996)))).toBe(0x7bff);
    expect(f32BitsToF16(bitsOfF32(2 ** -25))).toBe(0); // tie between 0 and the smallest subnormal
    expect(f32BitsToF16(bitsOfF32(3 * 2 ** -25))).toBe(2); // tie between subnormals 1 and 2 → 2
    expect(f32BitsToF16(bitsOfF32(1 + 2 ** -11))).toBe(0x3c00);
    expect(f32BitsToBF16(0x3f808000)).toBe(0x3f80);
    expect(f32BitsToBF16(0x3f818000)).toBe(0x3f82);
    expect(f32BitsToBF16(0xffa00000) & 0x7fc0).toBe(0x7fc0); // signalling NaN becomes quiet, stays NaN
  });

  it('every F16 value decodes exactly and survives F16 → F32 → F16', () => {
    const bad: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const v = f16BitsToF32(h);
      const ref = decodeF16(h);
      const ok = Number.isNaN(ref)
        ? Number.isNaN(v) && isNaNF16(f32BitsToF16(bitsOfF32(v)))
        : Object.is(v, ref) && f32BitsToF16(bitsOfF32(v)) === h;
      if (!ok) bad.push(h);
    }
    expect(bad).toEqual([]);
  });
});

describe('convertElements', () => {
  const values = Float32Array.from([0.5, -1.25, 3.1415927, -0, 65519.996, 1e-7, -3, 2 ** -30]);
  const src = () => new Uint8Array(values.slice().buffer);

  it('F32 → F32 is the same bytes', () => {
    const s = src();
    expect(convertElements(s, 'F32', 'F32')).toBe(s);
  });

  it('F32 → F16 / BF16 element by element', () => {
    const f16 = new Uint16Array(convertElements(src(), 'F32', 'F16').buffer);
    const bf16 = new Uint16Array(convertElements(src(), 'F32', 'BF16').buffer);
    values.forEach((v, i) => {
      expect(f16[i]).toBe(refF16Bits(v));
      expect(bf16[i]).toBe(refBF16Bits(v));
    });
  });

  it('addOne stores fround(1 + w) in F32 and leaves the source untouched', () => {
    const s = src();
    const before = s.slice();
    const out = new Float32Array(convertElements(s, 'F32', 'F32', true).buffer);
    values.forEach((v, i) => expect(Object.is(out[i], Math.fround(1 + v))).toBe(true));
    expect(s).toEqual(before);
  });

  it('F16 and BF16 sources widen exactly', () => {
    const halves = Uint16Array.from([0x3c00, 0xc000, 0x0001, 0x7bff, 0x8400, 0x3555]);
    const f32 = new Float32Array(convertElements(new Uint8Array(halves.buffer), 'F16', 'F32').buffer);
    halves.forEach((h, i) => expect(f32[i]).toBe(decodeF16(h)));
    const bf = new Float32Array(convertElements(new Uint8Array(halves.buffer), 'BF16', 'F32').buffer);
    halves.forEach((h, i) => expect(bf[i]).toBe(decodeBF16(h)));
    // F16 → BF16 goes through the exact F32 value, then rounds once.
    const f16ToBf16 = new Uint16Array(convertElements(new Uint8Array(halves.buffer), 'F16', 'BF16').buffer);
    halves.forEach((h, i) => expect(f16ToBf16[i]).toBe(refBF16Bits(decodeF16(h))));
  });
});
