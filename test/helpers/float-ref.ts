/**
 * Slow, independent reference roundings for the converter tests: F32 → F16 / BF16 by searching the two
 * representable neighbours in float64 and taking the nearer one (ties to the even bit pattern), instead
 * of the bit tricks the converter uses. Also exact decoders.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The F32 value with these bits, exactly, as a float64. */
export function f32FromBits(bits: number): number {
  u32[0] = bits;
  return f32[0]!;
}

/** The bits of an F32 value. */
export function bitsOfF32(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** Exact value of an F16 bit pattern, from the IEEE definition. */
export function decodeF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return e === 0 ? sign * (m / 1024) * 2 ** -14 : sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Exact value of a BF16 bit pattern (the top half of an F32). */
export function decodeBF16(b: number): number {
  return f32FromBits(b << 16 >>> 0);
}

/** Picks between neighbours lo ≤ a ≤ hi (values vlo, vhi): nearer wins, a tie goes to the even pattern. */
function nearest(a: number, lo: number, vlo: number, hi: number, vhi: number): number {
  const dl = a - vlo;
  const dh = vhi - a;
  if (dl < dh) return lo;
  if (dh < dl) return hi;
  return (lo & 1) === 0 ? lo : hi;
}

// Every non-negative F16 value, with +inf standing at 2^16 (the next value of the F16 grid after 65504).
const F16_VALUES = Array.from({ length: 0x7c01 }, (_, h) => (h === 0x7c00 ? 65536 : decodeF16(h)));

/** Round-to-nearest-even F32 → F16 bits; NaN gives NaN (any NaN pattern). */
export function refF16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65536) return sign | 0x7c00;
  let lo = 0;
  let hi = 0x7c00;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (F16_VALUES[mid]! <= a) lo = mid;
    else hi = mid;
  }
  return sign | nearest(a, lo, F16_VALUES[lo]!, hi, F16_VALUES[hi]!);
}

/** Round-to-nearest-even F32 → BF16 bits; NaN gives NaN. */
export function refBF16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7f80;
  const lo = bitsOfF32(a) >>> 16; // truncation: the neighbour below
  const hi = lo + 1;
  const vhi = hi === 0x7f80 ? 2 ** 128 : decodeBF16(hi); // past the largest finite BF16 lies inf
  return sign | nearest(a, lo, decodeBF16(lo), hi, vhi);
}

/** Whether an F16 / BF16 bit pattern is a NaN. */
export const isNaNF16 = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
export const isNaNBF16 = (b: number) => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;

/**
 * F32 bit patterns that probe rounding: ties, subnormals, overflow edges, NaNs (with payloads, given as
 * bits because a JS number may not keep them), infinities, signed zeros.
 */
export function edgeBits(): number[] {
  const v = [
    0, -0, 1, -1, NaN, Infinity, -Infinity,
    65504, 65519, 65519.996, 65520, -65520, 65536, 1e5, 3.4e38, 3.3961e38, 3.3962e38, 3.4028234e38,
    2 ** -14, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0000001, 3 * 2 ** -25, 1.5 * 2 ** -24, 2 ** -26, 1e-8, -1e-8, 1e-40, -1e-45,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 2048 + 1, 2048 + 3, // F16 ties and near-ties
    1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, 256 + 1, 256 + 3, // BF16 ties and near-ties
    f32FromBits(0x3f808000), f32FromBits(0x3f818000), f32FromBits(0x7f7fffff), f32FromBits(0x00800000), f32FromBits(0x007fffff),
    2 ** -25 + 2 ** -40, -(2 ** -14) * 0.99999,
  ];
  return [...v.map(bitsOfF32), 0x7fc00001, 0xffa00000, 0x7f800001]; // NaNs with payloads (quiet, signalling)
}

/** Exact value of element i of little-endian `bytes` of type `dtype` (F32 / F16 / BF16). */
function sourceValues(dtype: string, bytes: Uint8Array): (i: number) => number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') return (i) => dv.getFloat32(4 * i, true);
  if (dtype === 'F16') return (i) => decodeF16(dv.getUint16(2 * i, true));
  return (i) => decodeBF16(dv.getUint16(2 * i, true));
}

/**
 * Compares a converted tensor with its source, element by element, under the converter's rules:
 * F32 output of an F32 source is bit-identical; F16/BF16 output is the reference rounding of the exact
 * source value; a `norm` is the F32 value fround(1 + w). NaN must stay NaN. Returns the mismatches
 * (at most `limit` described).
 */
export function tensorMismatches(
  src: { dtype: string; bytes: Uint8Array },
  out: { type: string; bytes: Uint8Array },
  norm: boolean,
  limit = 5,
): { count: number; examples: string[] } {
  const item = src.dtype === 'F32' ? 4 : 2;
  const n = src.bytes.byteLength / item;
  const value = sourceValues(src.dtype, src.bytes);
  const dv = new DataView(out.bytes.buffer, out.bytes.byteOffset, out.bytes.byteLength);
  const outItem = out.type === 'F32' ? 4 : 2;
  const examples: string[] = [];
  let count = 0;
  if (out.bytes.byteLength !== n * outItem) return { count: n, examples: [`size ${out.bytes.byteLength}, expected ${n * outItem}`] };
  const srcDv = new DataView(src.bytes.buffer, src.bytes.byteOffset, src.bytes.byteLength);
  for (let i = 0; i < n; i++) {
    let ok: boolean;
    let want: number;
    let got: number;
    if (out.type === 'F32') {
      got = dv.getUint32(4 * i, true);
      if (norm) {
        want = bitsOfF32(Math.fround(1 + value(i)));
        ok = Number.isNaN(value(i)) ? Number.isNaN(f32FromBits(got)) : got === want;
      } else if (src.dtype === 'F32') {
        want = srcDv.getUint32(4 * i, true); // bit-identical, NaN payloads included
        ok = got === want;
      } else {
        want = bitsOfF32(value(i));
        ok = Number.isNaN(value(i)) ? Number.isNaN(f32FromBits(got)) : got === want;
      }
    } else {
      got = dv.getUint16(2 * i, true);
      const v = value(i);
      want = out.type === 'F16' ? refF16Bits(v) : refBF16Bits(v);
      ok = Number.isNaN(v) ? (out.type === 'F16' ? isNaNF16(got) : isNaNBF16(got)) : got === want;
    }
    if (!ok) {
      count++;
      if (examples.length < limit) examples.push(`[${i}] source ${value(i)}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
    }
  }
  return { count, examples };
}
