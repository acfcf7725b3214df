/**
 * Element conversions between F32, F16 and BF16, correctly rounded (round to nearest, ties to even;
 * F16 subnormals kept, overflow to ±inf; NaN stays NaN). Data is little-endian, as in both
 * safetensors and GGUF; typed-array views assume a little-endian host (x64, arm64).
 */
import type { SafetensorsDType } from './safetensors.js';

/** The element types the converter writes. */
export type FloatType = 'F32' | 'F16' | 'BF16';

/** F32 bit pattern → F16 bit pattern, round to nearest even. */
export function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13); // inf, or a quiet NaN
  const e = exp - 127 + 15; // F16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // |x| >= 2^16: beyond F16's largest finite value even before rounding
  if (e <= 0) {
    // F16 subnormal (or zero): value = m · 2^-24, so drop (14 - e) bits of the 24-bit significand.
    if (e < -10) return sign; // |x| < 2^-25 rounds to zero (2^-25 exactly is a tie, and 0 is even)
    const significand = mant | 0x800000;
    const shift = 14 - e;
    let half = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const tie = 1 << (shift - 1);
    if (rest > tie || (rest === tie && (half & 1) === 1)) half++; // may carry into the smallest normal: still correct
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++; // a carry into the exponent is correct, up to inf
  return sign | half;
}

/** F32 bit pattern → BF16 bit pattern, round to nearest even. */
export function f32BitsToBF16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff; // quiet NaN, sign kept
  const lsb = (bits >>> 16) & 1;
  return ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** F16 bit pattern → its exact F32 value. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

let f16Table: Float32Array | undefined;
/** All 65536 F16 values as F32, built on first use. */
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** Decodes little-endian elements of `from` to F32 (exact for all three types). */
function toF32(src: Uint8Array, from: SafetensorsDType): Float32Array {
  if (from === 'F32') return new Float32Array(src.buffer, src.byteOffset, src.byteLength / 4);
  const halves = new Uint16Array(src.buffer, src.byteOffset, src.byteLength / 2);
  const out = new Float32Array(halves.length);
  if (from === 'F16') {
    const table = f16ToF32Table();
    for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]!]!;
  } else {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 16;
  }
  return out;
}

/**
 * Converts one chunk of little-endian elements from `from` to `to`. With `addOne`, stores `1 + w`
 * computed in F32 (Gemma's RMSNorm scale, as transformers computes it). `src` must be aligned to its
 * element size (buffers from `readTensorChunks` are). Returns `src` itself when nothing changes.
 */
export function convertElements(src: Uint8Array, from: SafetensorsDType, to: FloatType, addOne = false): Uint8Array {
  if (from === to && !addOne) return src;
  let values = toF32(src, from);
  if (addOne) {
    if (values.buffer === src.buffer) values = new Float32Array(values); // never modify the caller's bytes
    for (let i = 0; i < values.length; i++) values[i] = Math.fround(1 + values[i]!);
  }
  if (to === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  if (to === 'F16') for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16(bits[i]!);
  else for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBF16(bits[i]!);
  return new Uint8Array(out.buffer);
}
