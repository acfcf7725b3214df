/**
 * Image preprocessing timings: decode (sharp), PIL-compatible resize (native) and normalisation,
 * for a few photo sizes. Run: `node --import tsx bench/image.ts [size=224]`.
 */
import sharp from 'sharp';
import { decodeImage, normalize, resizeBicubic } from '../lib/image/index.js';

const size = Number(process.argv[2] ?? 224);
const photos: Array<[string, number, number]> = [
  ['VGA', 640, 480],
  ['1080p', 1920, 1080],
  ['12 MP', 4000, 3000],
];

/** Median of `runs` timings of `fn`, in ms. */
async function time(runs: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    t.push(performance.now() - start);
  }
  return t.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

console.log(`preprocessing to ${size}x${size} (median ms)`);
console.log('photo      decode JPEG   resize   normalize');
for (const [name, w, h] of photos) {
  // A smooth gradient with noise: compresses like a photo.
  const raw = new Uint8Array(w * h * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = ((i % (w * 3)) / 12 + Math.floor(i / (w * 3)) / 8 + ((i * 2654435761) >>> 28)) & 255;
  const jpeg = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  const rgb = await decodeImage(jpeg);
  const decodeMs = await time(5, () => decodeImage(jpeg));
  const resizeMs = await time(5, () => resizeBicubic({ ...rgb, channels: 3 }, size, size));
  const resized = await resizeBicubic({ ...rgb, channels: 3 }, size, size);
  const normMs = await time(5, () => normalize(resized.data, size, size, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]));
  console.log(`${name.padEnd(10)} ${decodeMs.toFixed(1).padStart(11)} ${resizeMs.toFixed(1).padStart(8)} ${normMs.toFixed(2).padStart(11)}`);
}
