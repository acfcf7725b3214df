/**
 * Test helpers for images: golden fixture access, independent reference resizers, hand-made
 * hostile files. Nothing here calls the code under test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The golden outputs of the tiny PaliGemma fixture. */
export const goldenDir = path.resolve(projectRoot, 'test/fixtures/paligemma-tiny/golden');

/** Reads a golden file as bytes. */
export function goldenBytes(file: string): Uint8Array {
  return new Uint8Array(fs.readFileSync(path.join(goldenDir, file)));
}

/** Reads a little-endian float32 golden file. */
export function goldenF32(file: string): Float32Array {
  const b = fs.readFileSync(path.join(goldenDir, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

/** The manifest's `images` section. */
export function goldenImages(): Record<string, { file: string; source_size_wh: [number, number] }> {
  return JSON.parse(fs.readFileSync(path.join(goldenDir, 'manifest.json'), 'utf8')).images;
}

/** Max |a − b| and the number of differing elements. */
export function compareBytes(a: ArrayLike<number>, b: ArrayLike<number>): { maxDiff: number; differing: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let maxDiff = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d) differing++;
    if (d > maxDiff) maxDiff = d;
  }
  return { maxDiff, differing };
}

/** Deterministic pseudo-random bytes (xorshift32). */
export function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 255;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reference resizers: Pillow's antialiased bicubic (Image.BICUBIC), written from its documented
// algorithm. Per axis, output i is centred at (i + 0.5)·scale; the kernel (Keys cubic, a = −0.5,
// support 2) is stretched by max(scale, 1); the window is [trunc(center − support + 0.5),
// trunc(center + support + 0.5)) clamped to the image; weights are normalised to sum 1.
// Horizontal pass then vertical, each rounded and clipped to 0..255; an axis whose size does not
// change is not filtered.

function keysCubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Window {
  first: number;
  weights: number[];
}

function axisWindows(inSize: number, outSize: number): Window[] {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const windows: Window[] = [];
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const raw: number[] = [];
    for (let j = lo; j < hi; j++) raw.push(keysCubic((j - center + 0.5) * (1 / filterScale)));
    const sum = raw.reduce((p, w) => p + w, 0);
    windows.push({ first: lo, weights: raw.map((w) => (sum !== 0 ? w / sum : w)) });
  }
  return windows;
}

/** How one pass turns a window's weights and samples into a byte. */
type Accumulate = (samples: number[], weights: number[]) => number;

/** float64: exact weighted sum, rounded half up, clipped. */
const float64Sum: Accumulate = (samples, weights) => {
  let s = 0;
  for (let t = 0; t < samples.length; t++) s += samples[t]! * weights[t]!;
  return Math.min(255, Math.max(0, Math.floor(s + 0.5)));
};

/** Pillow's fixed point: weights × 2^22 rounded half away from zero, integer sum from one half, floor. */
const ONE = 2 ** 22;
const fixedPointSum: Accumulate = (samples, weights) => {
  let s = ONE / 2;
  for (let t = 0; t < samples.length; t++) {
    const w = weights[t]! * ONE;
    s += samples[t]! * (w < 0 ? Math.trunc(w - 0.5) : Math.trunc(w + 0.5));
  }
  return Math.min(255, Math.max(0, Math.floor(s / ONE)));
};

function separableResize(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  accumulate: Accumulate,
): Uint8Array {
  let cur = src;
  let w = width;
  if (outWidth !== width) {
    const win = axisWindows(width, outWidth);
    const next = new Uint8Array(outWidth * height * channels);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < outWidth; x++)
        for (let c = 0; c < channels; c++) {
          const { first, weights } = win[x]!;
          const samples = weights.map((_, t) => cur[(y * w + first + t) * channels + c]!);
          next[(y * outWidth + x) * channels + c] = accumulate(samples, weights);
        }
    cur = next;
    w = outWidth;
  }
  if (outHeight !== height) {
    const win = axisWindows(height, outHeight);
    const next = new Uint8Array(w * outHeight * channels);
    for (let y = 0; y < outHeight; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < channels; c++) {
          const { first, weights } = win[y]!;
          const samples = weights.map((_, t) => cur[((first + t) * w + x) * channels + c]!);
          next[(y * w + x) * channels + c] = accumulate(samples, weights);
        }
    cur = next;
  }
  return cur === src ? src.slice() : cur;
}

/** Pillow's bicubic with exact float64 weights (differs from Pillow by rounding only: ±1). */
export function referenceResizeFloat64(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  return separableResize(src, width, height, channels, outWidth, outHeight, float64Sum);
}

/** Pillow's bicubic with its 22-bit fixed-point arithmetic (should match Pillow bit for bit). */
export function referenceResizeFixedPoint(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  return separableResize(src, width, height, channels, outWidth, outHeight, fixedPointSum);
}

/**
 * Pillow's `alpha_composite` of (v, a) over opaque white, in its own integer arithmetic
 * (7 extra bits of precision, division by 255 approximated with shifts).
 */
export function pillowOverWhite(v: number, a: number): number {
  if (a === 0) return 255;
  const outa255 = a * 255 + 255 * (255 - a);
  const coef1 = Math.floor((a * 255 * 255 * 128) / outa255);
  const coef2 = 255 * 128 - coef1;
  const t = v * coef1 + 255 * coef2 + (0x80 << 7);
  return (((t >>> 8) + t) >>> 8) >>> 7;
}

// ---------------------------------------------------------------------------------------------
// Hand-made files.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A copy of a PNG whose IHDR declares another size (CRC fixed up, so the header is valid): a
 * decompression bomb's header on a tiny file.
 */
export function pngWithDeclaredSize(png: Uint8Array, width: number, height: number): Uint8Array {
  const out = png.slice();
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  // Signature (8) + IHDR length (4) + "IHDR" (4): width and height follow.
  if (String.fromCharCode(...out.subarray(12, 16)) !== 'IHDR') throw new Error('not a PNG with IHDR first');
  view.setUint32(16, width);
  view.setUint32(20, height);
  view.setUint32(29, crc32(out.subarray(12, 29))); // CRC over type + 13 data bytes
  return out;
}
