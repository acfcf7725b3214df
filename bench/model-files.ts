/**
 * The benchmark's model files: a random-weight F16 text GGUF with exactly the shape and metadata of the
 * published paligemma-3b-mix-224 text model (5.02 GB), a projector GGUF of the real SigLIP So400m/14 @224
 * shape (~0.83 GB), and a 224×224 test image. Generated once into the bench cache directory and reused
 * while they stay valid.
 *
 * Weights are N(0, 0.02) in F16 and norm scales ≈ 1, so both engines produce finite activations and
 * logits. To generate at disk speed, one 8 MiB pool of random F16 values is made once and every weight
 * tensor is streamed as 8 MiB views of it, each starting at a different offset: big sequential writes
 * from one small buffer (fresh memory is slow to touch on this VM), and no long repeated runs.
 */
import fs from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';

import { parseConfig } from '../lib/convert/config.js';
import { projectorMetadata } from '../lib/convert/convert.js';
import { projectorTensorPlan } from '../lib/convert/tensors.js';
import { readGGUF } from '../lib/gguf/reader.js';
import { seededRandom } from '../lib/model/sampling.js';
import type { QuantMix } from '../lib/quant/plan.js';
import { quantizeModel } from '../lib/quant/quantize.js';
import { writeGGUF } from '../lib/gguf/writer.js';
import type { GGUFFile, GGUFTensorInput, GGUFWriteInput } from '../lib/gguf/types.js';
import { paligemmaTextModelLayout } from '../test/helpers/gguf-fixtures.js';

/** Paths of the generated files. */
export interface BenchModelFiles {
  text: string;
  projector: string;
  image: string;
  textBytes: number;
  projectorBytes: number;
}

/** Where the bench keeps generated models, node-llama-cpp and compiled probes. */
export function benchCacheDir(): string {
  return process.env.PALIGEMMA_BENCH_CACHE ?? path.join(os.homedir(), '.cache', 'paligemma-bench');
}

/** Bump when the generated content changes, so stale files are not reused. */
const GENERATION = 'r1';
const TEXT_FILE = `paligemma-3b-mix-224-random-f16.${GENERATION}.gguf`;
const PROJECTOR_FILE = `mmproj-paligemma-3b-mix-224-random-f16.${GENERATION}.gguf`;
const IMAGE_FILE = `image-224.${GENERATION}.png`;

/** The published paligemma-3b-mix-224 config.json (the keys that shape the files). */
export const PALIGEMMA_3B_MIX_224 = {
  model_type: 'paligemma',
  projection_dim: 2048,
  text_config: {
    model_type: 'gemma', hidden_size: 2048, intermediate_size: 16384, num_attention_heads: 8,
    num_hidden_layers: 18, num_key_value_heads: 1, vocab_size: 257216,
  },
  vision_config: {
    model_type: 'siglip_vision_model', hidden_size: 1152, intermediate_size: 4304, num_attention_heads: 16,
    num_hidden_layers: 27, patch_size: 14, image_size: 224,
  },
};

/** Standard deviation of the random weights, and of the F32 biases/embeddings. */
const WEIGHT_STD = 0.02;
/** The F16 pool: 4 Mi values (8 MiB), stored twice in a row so any 8 MiB window is one contiguous view. */
const POOL_VALUES = 4 * 2 ** 20;

/** Normal samples N(0, std²) by Box–Muller. */
function normal(seed: number, std: number): () => number {
  const u = seededRandom(seed);
  return () => std * Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * IEEE half bits of `x` (as float32), rounded to nearest even; |x| below the normal range flushes to ±0
 * and beyond it clamps to ±65504 (weights here are ~0.02).
 */
export function f16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7bff; // clamp to the largest finite half
  const mant = b & 0x7fffff;
  let h = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // a carry moves into the exponent, as it should
  return (h & 0x7fff) === 0x7c00 ? sign | 0x7bff : h; // rounded up to infinity: clamp instead
}

let sharedPool: Uint8Array | undefined;

/** The 8 MiB pool of N(0, WEIGHT_STD²) F16 values, twice over, as bytes (made once per process). */
function f16Pool(): Uint8Array {
  if (sharedPool) return sharedPool;
  const values = new Uint16Array(2 * POOL_VALUES);
  const next = normal(0x5eed, WEIGHT_STD);
  for (let i = 0; i < POOL_VALUES; i++) values[i] = f16Bits(next());
  values.copyWithin(POOL_VALUES, 0, POOL_VALUES);
  return (sharedPool = new Uint8Array(values.buffer));
}

/**
 * `bytes` of F16 weights as views of the pool, each window starting at a new even offset (a value
 * boundary), so consecutive windows and tensors differ.
 */
function* poolWindows(pool: Uint8Array, bytes: number, seed: number): Generator<Uint8Array> {
  const window = pool.length / 2;
  let start = (Math.imul(seed + 1, 0x9e3779b1) >>> 0) % window;
  for (let done = 0; done < bytes; ) {
    start &= ~1;
    const n = Math.min(window, bytes - done);
    yield pool.subarray(start, start + n);
    done += n;
    start = (start + 2_654_436) % window; // an even stride far from any power of two
  }
}

/** An F32 tensor's values: `mean` plus N(0, std²) noise. */
function f32Values(count: number, mean: number, std: number, seed: number): Float32Array {
  const next = normal(seed, std);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = mean + next();
  return out;
}

const elements = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * Gives every tensor of `layout` its random data: F16 weights from the pool, F32 norm scales ≈ 1
 * (names matching `isScale`), other F32 tensors (biases, position embedding) ≈ 0.
 */
function withRandomData(layout: GGUFWriteInput, isScale: (name: string) => boolean): GGUFWriteInput {
  const tensors = layout.tensors.map((t, i): GGUFTensorInput => {
    const n = elements(t.dims);
    if (t.type === 'F16') return { ...t, data: () => poolWindows(f16Pool(), 2 * n, i) };
    if (t.type === 'F32') return { ...t, data: () => f32Values(n, isScale(t.name) ? 1 : 0, WEIGHT_STD, 1000 + i) };
    throw new Error(`bench generator: unexpected tensor type ${t.type} for ${t.name}`);
  });
  return { metadata: layout.metadata, tensors };
}

/** The text model: the published file's metadata and tensor table, random weights. */
function textModel(): GGUFWriteInput {
  return withRandomData(paligemmaTextModelLayout(), (name) => name.endsWith('norm.weight'));
}

/** The projector: docs/FORMAT.md's layout for the real SigLIP So400m/14 @224 config, random weights. */
function projectorModel(): GGUFWriteInput {
  const cfg = parseConfig(PALIGEMMA_3B_MIX_224);
  const metadata = projectorMetadata(cfg, 'paligemma-3b-mix-224 (random weights)', 'f16', { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  const tensors = projectorTensorPlan(cfg).map((m): GGUFTensorInput => ({
    name: m.gguf,
    type: m.storage === 'F32' ? 'F32' : 'F16',
    dims: [...m.shape].reverse(),
  }));
  return withRandomData({ metadata, tensors }, (name) => /\.(ln1|ln2|post_ln)\.weight$/.test(name));
}

/**
 * Why the file at `file` is not a complete copy of `expected`, or undefined when it is: the header must
 * parse and list the same tensors (name, type, dims), the size must end where the last tensor does, and
 * the last tensor must hold data (a sparse layout-only file has zeros there).
 */
async function invalidReason(file: string, expected: GGUFWriteInput): Promise<string | undefined> {
  if (!fs.existsSync(file)) return 'missing';
  let gguf: GGUFFile;
  try {
    gguf = await readGGUF(file);
  } catch (err) {
    return `unreadable header (${(err as Error).message})`;
  }
  if (gguf.tensors.length !== expected.tensors.length) return `has ${gguf.tensors.length} tensors, expected ${expected.tensors.length}`;
  for (let i = 0; i < gguf.tensors.length; i++) {
    const got = gguf.tensors[i]!;
    const want = expected.tensors[i]!;
    if (got.name !== want.name || got.type !== want.type || got.dims.join() !== want.dims.join())
      return `tensor ${i} is ${got.name} ${got.type} [${got.dims}], expected ${want.name} ${want.type} [${want.dims}]`;
  }
  const last = gguf.tensors.at(-1)!;
  const end = Math.ceil((last.offset + last.size) / gguf.alignment) * gguf.alignment;
  if (gguf.fileSize !== end) return `size ${gguf.fileSize}, expected ${end}`;
  const fh = await open(file, 'r');
  try {
    const sample = Buffer.alloc(4096);
    await fh.read(sample, 0, sample.length, last.offset + Math.floor(last.size / 2) - sample.length);
    if (sample.every((b) => b === 0)) return 'the tensor data is zeros (a layout-only file?)';
  } finally {
    await fh.close();
  }
  return undefined;
}

/** Writes `input` to `file` through a temporary name, so a present file is always complete. */
async function generate(file: string, input: GGUFWriteInput, log: (line: string) => void): Promise<void> {
  const t0 = performance.now();
  const tmp = `${file}.partial`;
  await writeGGUF(tmp, input);
  fs.renameSync(tmp, file);
  const s = (performance.now() - t0) / 1000;
  const gb = fs.statSync(file).size / 1e9;
  log(`  wrote ${path.basename(file)}: ${gb.toFixed(2)} GB in ${s.toFixed(1)} s (${(gb / s).toFixed(2)} GB/s)`);
}

/** A 224×224 PNG: smooth colour gradients plus noise, so preprocessing does real work. */
async function writeImage(file: string): Promise<void> {
  const size = 224;
  const pixels = Buffer.alloc(size * size * 3);
  const u = seededRandom(224);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const i = 3 * (y * size + x);
      pixels[i] = Math.min(255, x + 32 * u());
      pixels[i + 1] = Math.min(255, y + 32 * u());
      pixels[i + 2] = Math.min(255, 128 + 100 * Math.sin((x + y) / 17) + 20 * u());
    }
  const tmp = `${file}.partial`;
  await sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).png().toFile(tmp);
  fs.renameSync(tmp, file);
}

/**
 * Returns the bench's model files in `dir`, generating what is missing or invalid. With `check` false,
 * present files are trusted without reading their headers.
 */
export async function ensureModelFiles(
  dir: string,
  options: { check?: boolean; log?: (line: string) => void } = {},
): Promise<BenchModelFiles> {
  const log = options.log ?? ((line: string) => console.log(line));
  fs.mkdirSync(dir, { recursive: true });
  const files = { text: path.join(dir, TEXT_FILE), projector: path.join(dir, PROJECTOR_FILE), image: path.join(dir, IMAGE_FILE) };
  for (const [file, make] of [[files.text, textModel], [files.projector, projectorModel]] as const) {
    const input = make();
    const reason = options.check === false && fs.existsSync(file) ? undefined : await invalidReason(file, input);
    if (reason === undefined) continue;
    log(`  generating ${path.basename(file)} (${reason})`);
    await generate(file, input, log);
    const after = await invalidReason(file, input);
    if (after !== undefined) throw new Error(`bench generator: ${file} is invalid right after writing it: ${after}`);
  }
  if (!fs.existsSync(files.image)) await writeImage(files.image);
  return { ...files, textBytes: fs.statSync(files.text).size, projectorBytes: fs.statSync(files.projector).size };
}

/** A quantized copy of a bench file made by `paligemma quantize`, and how long making it took (when it was made now). */
export interface QuantizedFile {
  file: string;
  bytes: number;
  seconds?: number;
}

/**
 * `source` (an F16 bench file, `…-f16.<generation>.gguf`) quantized with `mix`, made once into the same
 * directory (`…-<mix>.<generation>.gguf`) and remade when older than its source. A projector gets Q8_0
 * whatever the mix (lib/quant/plan.ts), so pass `q8_0` for it.
 */
export async function ensureQuantizedFile(source: string, mix: QuantMix, log: (line: string) => void): Promise<QuantizedFile> {
  const file = source.replace(/-f16\.(r\d+)\.gguf$/, `-${mix}.$1.gguf`);
  if (file === source) throw new Error(`bench: ${source} is not an F16 bench file`);
  if (fs.existsSync(file) && fs.statSync(file).mtimeMs > fs.statSync(source).mtimeMs) return { file, bytes: fs.statSync(file).size };
  log(`  quantizing ${path.basename(source)} -> ${path.basename(file)}`);
  let last = 0;
  const t0 = performance.now();
  const r = await quantizeModel(source, file, {
    type: mix,
    onProgress: (p) => {
      const pct = Math.floor((100 * p.bytesDone) / p.bytesTotal);
      if (pct >= last + 10) log(`    ${(last = pct)}%  ${p.tensor}`);
    },
  });
  return { file, seconds: (performance.now() - t0) / 1000, bytes: r.bytesOut };
}

// `node --import tsx bench/model-files.ts` generates (or checks) the files and prints their paths.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  console.log(await ensureModelFiles(benchCacheDir()));
}
