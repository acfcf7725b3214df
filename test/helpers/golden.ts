/**
 * Access to the golden outputs of the tiny PaliGemma fixture (test/fixtures/paligemma-tiny):
 * Hugging Face transformers 4.44.2 in float32, cross-checked by a float64 implementation.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURE_DIR = path.resolve(projectRoot, 'test/fixtures/paligemma-tiny');
export const GOLDEN_DIR = path.join(FIXTURE_DIR, 'golden');

export interface GoldenCase {
  name: string;
  image: string;
  prompt: string;
  prefix_len: number;
  input_ids: number[];
  generated_ids: number[];
  generated_top1_minus_top2: number[];
  prefix_top10_minus_top11: number[];
  min_generated_margin: number;
  files: Record<string, { file: string; shape: number[] }>;
}

export interface GoldenManifest {
  num_image_tokens: number;
  /** How far the float32 reference is from an independent float64 implementation, per case and tensor. */
  agreement_golden_vs_numpy_f64: Record<string, Record<string, { max_abs: number }>>;
  images: Record<string, { file: string; pixel_values: { file: string } }>;
  cases: GoldenCase[];
}

export const manifest: GoldenManifest = JSON.parse(readFileSync(path.join(GOLDEN_DIR, 'manifest.json'), 'utf8'));

function bytes(file: string): Buffer {
  return readFileSync(path.join(GOLDEN_DIR, file));
}

export function f32(file: string): Float32Array {
  const b = bytes(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function i32(file: string): Int32Array {
  const b = bytes(file);
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** A case's tensor by key (vision_out, image_features, decoder_input, layer_out, ...). */
export function caseF32(c: GoldenCase, key: string): Float32Array {
  return f32(c.files[key].file);
}

export function caseI32(c: GoldenCase, key: string): Int32Array {
  return i32(c.files[key].file);
}

export function pixelValues(image: string): Float32Array {
  return f32(manifest.images[image].pixel_values.file);
}

export function imageBytes(image: string): Buffer {
  return bytes(image);
}

/**
 * Tolerance for comparing our output with the golden tensor `key` of case `c`: the manifest's
 * recommended bound, widened by twice the reference's own measured error (its distance from the
 * float64 cross-check). An implementation as accurate as the reference can be that far from it:
 * its own rounding plus the reference's. In layer outputs (magnitudes ~20) the reference's error
 * alone reaches 1.05e-4, above the recommended 1e-4.
 */
export function tolerance(c: GoldenCase, key: string, recommended: number): number {
  const own = manifest.agreement_golden_vs_numpy_f64[c.name]?.[key]?.max_abs ?? 0;
  return recommended + 2 * own;
}

/** Largest |a[i] - b[i]|; throws when lengths differ. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
