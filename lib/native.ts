/**
 * Loads the native addon (the local `build/`, else a prebuild from `prebuilds/`) and types its
 * surface: every function and class of the shipped addon (native/addon.cc) and of the test addon
 * (native/testing/) is declared here, and everything else reaches native code through this module.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { PaliGemmaError, isPaliGemmaError } from './errors.js';
import { ModelFilesError, type ModelFilesErrorCode } from './model/errors.js';

/** A SIMD kernel set compiled into the addon. */
export type SimdVariantName = 'scalar' | 'avx2' | 'avx512' | 'neon';

/** What the CPU (and OS) support, as reported by cpuid / hwcap. */
export interface CpuFeatures {
  arch: 'x64' | 'arm64' | 'other';
  sse42: boolean;
  avx: boolean;
  avx2: boolean;
  fma: boolean;
  f16c: boolean;
  avx512f: boolean;
  avx512bw: boolean;
  avx512vl: boolean;
  avx512dq: boolean;
  avx512bf16: boolean;
  avx512fp16: boolean;
  avx512vnni: boolean;
  neon: boolean;
  asimdhp: boolean;
  bf16: boolean;
}

export interface SimdVariantInfo {
  name: SimdVariantName;
  /** Whether this CPU can run the variant. */
  supported: boolean;
  /** The CPU features the variant needs, in words. */
  requires: string;
}

/** What both addons export about the CPU and the kernel sets (native/bind_runtime.cc). */
export interface NativeRuntime {
  cpuFeatures(): CpuFeatures;
  simdVariant(): SimdVariantName;
  simdVariants(): SimdVariantInfo[];
  /** Sets the process default kernel set; throws when unknown or unsupported. */
  setSimdVariant(name: string): void;
}

/**
 * How a weight matrix is stored (native/kernels/weight_types.h): F32 values, the raw bits of F16 / BF16
 * values, or llama.cpp's quantized blocks (Q8_0, Q4_0, Q5_0: 32 elements; Q4_K, Q6_K: 256).
 */
export type WeightTypeName = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q5_0' | 'q4_k' | 'q6_k';

/** Weight elements: a Float32Array for 'f32', a Uint16Array of raw bits for 'f16' and 'bf16', the blocks' bytes for the quantized types. */
export type WeightData = Float32Array | Uint16Array | Uint8Array;

/**
 * The arguments of a matrix multiply y[n, m] = x[n, k] · w[m, k]ᵀ (+ bias[m]): x is n rows of k
 * values `ldx` apart (default k), w exactly m · k elements, the result n rows `ldy` apart (default m),
 * (n - 1) · ldy + m values. `simd` forces a kernel set (default: the process default). Bad shapes,
 * lengths or types throw TypeError/RangeError.
 */
export type NativeMatmulArgs = [
  x: Float32Array, w: WeightData, wtype: WeightTypeName, bias: Float32Array | null, n: number, k: number, m: number,
  simd?: string, ldx?: number, ldy?: number,
];

/** Where one tensor lies in its mapped file (ggml dims, ne0 first). */
export interface NativeTensor {
  offset: number;
  type: number;
  dims: number[];
}

/** The text model for NativeModel: its file, config, and tensors by canonical name (lib/model/native-spec.ts). */
export interface NativeTextSpec {
  path: string;
  config: {
    nLayers: number;
    hidden: number;
    nHeads: number;
    nKvHeads: number;
    headDim: number;
    ffn: number;
    vocab: number;
    context: number;
    eps: number;
    ropeTheta: number;
  };
  tensors: Record<string, NativeTensor>;
}

/** The vision tower and projector for NativeModel. */
export interface NativeVisionSpec {
  path: string;
  config: {
    imageSize: number;
    patchSize: number;
    hidden: number;
    nHeads: number;
    ffn: number;
    nLayers: number;
    projectionDim: number;
    eps: number;
  };
  tensors: Record<string, NativeTensor>;
}

/**
 * What `new NativeModel(spec)` takes. Failures throw a ModelFilesError naming the file (native/model/load.h),
 * or a PaliGemmaError THREAD_LIMIT / OUT_OF_MEMORY.
 */
export interface NativeModelSpec {
  text: NativeTextSpec;
  vision?: NativeVisionSpec;
  /** Pool threads (default: one per physical core). */
  threads?: number;
  simd?: string;
  /** mlock the mapped files. */
  lockMemory?: boolean;
}

/** Options of a prefill. */
export interface NativePrefillOptions {
  /** Whole logit rows of the prompt's last rows (default 1; at most 256 MiB of them: 260 rows of PaliGemma's vocabulary). */
  logitsRows?: number;
  /** The `topK` best logits of every prompt row (1..vocab), computed natively a bounded chunk of rows at a time. */
  topK?: number;
  /** Return every intermediate (decoderInput, layerOut, finalHidden). */
  capture?: boolean;
  /**
   * KV-cache positions to make room for at once: the prompt's and the tokens the caller expects to
   * generate (default: the prompt's; at most the context length). A decode step beyond it grows
   * the cache (doubling it, so copying stays bounded by the final size).
   */
  capacity?: number;
}

/** A prefill whose last layer has run. */
export interface NativePrefillDone {
  done: true;
  /** (logitsRows, vocab). */
  logits: Float32Array;
  /** With `topK`: (prompt rows, topK) ids of each row's best logits, best first (ties: lower id first). */
  topIds?: Int32Array;
  /** With `topK`: the logits of `topIds`. */
  topLogits?: Float32Array;
  decoderInput?: Float32Array;
  layerOut?: Float32Array;
  finalHidden?: Float32Array;
}

/** A prefill with layers still to run (continuePrefill). */
export interface NativePrefillPending {
  done: false;
}

/**
 * native/bind_model.cc's NativeModel (native/model/paligemma.h). Sequences are slots 0..63, each
 * with a KV cache sized by what it needs. Calls must not overlap: a call while another runs throws.
 * A call whose mapped file changed, before or during it (rewritten, or cut short), fails with
 * ModelFilesError MODEL_FILE_CHANGED; a buffer beyond the machine's memory with PaliGemmaError OUT_OF_MEMORY.
 */
export interface NativeModel {
  /** B images (B × [3, S, S]) → B × [patches, hidden] outputs, one weight pass for the batch. */
  encodeImages(pixels: Float32Array): Promise<{ visionOut: Float32Array; features: Float32Array }>;
  /** Starts `sequence` anew with the image rows, then `ids`, and runs all its layers. */
  prefill(sequence: number, imageFeatures: Float32Array | null, ids: Int32Array, opts?: NativePrefillOptions): Promise<NativePrefillDone>;
  /**
   * The same, running only the first `layers` layers; continuePrefill() runs the rest, and decode
   * steps of other sequences may run in between (a prompt's attention is bidirectional, so a long
   * prefill can give way by layers only).
   */
  prefill(
    sequence: number, imageFeatures: Float32Array | null, ids: Int32Array, opts: NativePrefillOptions & { layers: number },
  ): Promise<NativePrefillDone | NativePrefillPending>;
  /** The next `layers` layers (default: the rest) of the sequence's prefill in progress. */
  continuePrefill(sequence: number, layers?: number): Promise<NativePrefillDone | NativePrefillPending>;
  /** Appends ids[b] to sequences[b] for all b in one pass; returns B × vocab logits. */
  decode(sequences: Int32Array, ids: Int32Array): Promise<Float32Array>;
  /** The same, writing the B × vocab logits into `into` (at least that long) instead of a new array. */
  decode(sequences: Int32Array, ids: Int32Array, into: Float32Array): Promise<undefined>;
  /** Frees the KV caches (and prefills in progress) of sequences >= keep. */
  releaseSequences(keep: number): void;
  /** Frees the KV cache (and prefill in progress) of one sequence; the others keep theirs. */
  releaseSequence(sequence: number): void;
  /** Bytes the KV cache of `sequence` occupies (0 when it holds none), or of all sequences; callable while a call runs. */
  kvCacheBytes(sequence?: number): number;
  dispose(): void;
  readonly simd: string;
  /** Pool threads; 0 once disposed. */
  readonly threads: number;
}

export type NativeModelConstructor = new (spec: NativeModelSpec) => NativeModel;

/** Where `quantizeRowsAsync` stopped: the first row holding NaN/±inf or overflowing the type's scales. */
export interface RowProblem {
  row: number;
  element: number;
  what: string;
}

/** The shipped addon (native/addon.cc): what the package uses. */
export interface NativeAddon extends NativeRuntime {
  /** GEMM on a libuv worker thread (the segmentation decoder's convolutions). */
  gemmAsync(...args: NativeMatmulArgs): Promise<Float32Array>;
  /** PIL-compatible bicubic resize of 8-bit pixels, [height, width, channels] → [outHeight, outWidth, channels]. */
  resizeRgb(src: Uint8Array, width: number, height: number, channels: number, outWidth: number, outHeight: number): Promise<Uint8Array>;
  /**
   * Quantizes `rows` rows of `k` elements of `srcType` (ggml id 0 F32, 1 F16, 30 BF16; `src` aligned to
   * its element size) to the ggml type `type` into `dst` (rows × row bytes), off the JS thread; resolves
   * null, or where it stopped (native/bind_quant.cc).
   */
  quantizeRowsAsync(type: number, src: Uint8Array, srcType: number, rows: number, k: number, dst: Uint8Array): Promise<RowProblem | null>;
  NativeModel: NativeModelConstructor;
}

/** Which keys each query may see: all, those at positions <= the query's, or those < prefixLen and causal after. */
export type MaskMode = 'full' | 'causal' | 'prefix';

/** Shape and options of one attention call; rows are row-major with the given strides (in elements). */
export interface AttentionShape {
  /** Query rows. */
  nQ: number;
  /** Key/value rows, at positions 0..nKv-1. */
  nKv: number;
  /** Query heads. */
  nHeads: number;
  /** Key/value heads; nHeads must be a multiple (query head h uses kv head h / (nHeads / nKvHeads)). */
  nKvHeads: number;
  headDim: number;
  /** Elements between query rows (default nHeads · headDim). */
  qStride?: number;
  /** Elements between key rows and between value rows (default nKvHeads · headDim). */
  kvStride?: number;
  /** Elements between output rows (default nHeads · headDim); the result holds nQ · outStride elements. */
  outStride?: number;
  mask: MaskMode;
  /** Required for mask 'prefix'. */
  prefixLen?: number;
  /** Position of query row 0 (decoding against a KV cache), default 0. */
  qPos0?: number;
  /** Multiplies q·k before the softmax (default 1/sqrt(headDim)). */
  scale?: number;
}

/** When a job ran on its worker thread, in milliseconds of a monotonic clock. */
export interface JobTimes {
  start: number;
  end: number;
}

/**
 * The test addon (native/testing/): the kernels called from JS with a forced SIMD variant, and
 * hooks of the async machinery, for tests and benchmarks only. Each call takes TypedArrays and
 * returns a fresh array; bad shapes, strides, ids or types throw TypeError/RangeError.
 */
export interface NativeTestAddon extends NativeRuntime {
  /** Blocked GEMM (the many-rows path), on the JS thread. */
  gemm(...args: NativeMatmulArgs): Float32Array;
  gemmGeglu(gate: Float32Array, ...args: NativeMatmulArgs): Float32Array;
  /** Streaming GEMV (the few-rows path). */
  gemv(...args: NativeMatmulArgs): Float32Array;
  /** The kernel `reps` times back to back; each run's milliseconds. */
  timeMatmul(kind: 'gemm' | 'gemv', reps: number, ...args: NativeMatmulArgs): Float64Array;
  /** Conv2d with kernel = stride = patch on CHW pixels: [(height/patch) · (width/patch), hidden]. */
  patchEmbed(pixels: Float32Array, channels: number, height: number, width: number, patch: number,
    weight: WeightData, wtype: WeightTypeName, bias: Float32Array | null, hidden: number, simd?: string): Float32Array;
  /** Threads of the shared kernel pool. */
  poolSize(): number;
  attention(q: Float32Array, k: Float32Array, v: Float32Array, shape: AttentionShape, simd?: string): Float32Array;
  layerNorm(x: Float32Array, w: Float32Array, b: Float32Array, rows: number, dim: number, eps: number,
    ldx: number, ldy: number, simd?: string): Float32Array;
  rmsNorm(x: Float32Array, w: Float32Array, rows: number, dim: number, eps: number, ldx: number, ldy: number,
    simd?: string): Float32Array;
  geluTanh(x: Float32Array, simd?: string): Float32Array;
  geglu(gate: Float32Array, up: Float32Array, simd?: string): Float32Array;
  add(a: Float32Array, b: Float32Array, simd?: string): Float32Array;
  scale(x: Float32Array, s: number, simd?: string): Float32Array;
  ropeNeox(x: Float32Array, rows: number, nHeads: number, headDim: number, ld: number, positions: Int32Array,
    theta: number, simd?: string): Float32Array;
  embedRows(table: WeightData, type: WeightTypeName, dim: number, ids: Int32Array, simd?: string): Float32Array;
  /** Sleeps `ms` on a libuv worker thread, then resolves, or rejects with `failWith`. */
  testSleepAsync(ms: number, failWith?: string): Promise<JobTimes>;
  /** The values of `rows` quantized rows of `k` elements of ggml type `type`. */
  dequantizeRows(type: number, src: Uint8Array, rows: number, k: number): Float32Array;
  /** Creates and destroys `count` thread pools of `threads` threads off the JS thread. */
  testPoolChurnAsync(count: number, threads: number): Promise<void>;
  /**
   * Maps `path`, cuts the file to half its size and reads every page of the map in pool tasks of a
   * `threads`-thread pool (POSIX): whether the pool caught the fault, how many tasks of a later run
   * ran, and the MODEL_FILE_CHANGED error the map's check then gives.
   */
  testTruncatedMapAsync(path: string, threads: number): Promise<{ faulted: boolean; tasksAfter: number; code: string; message: string }>;
  /**
   * Drops the file's unmapped pages from the page cache (Linux, posix_fadvise), so that the next
   * reads cache it afresh (see bench/run.ts); false where the platform has no such call.
   */
  dropPageCache(path: string): boolean;
}

/** Why a SIMD variant was refused. */
export type SimdErrorCode =
  /** The variant is not compiled into this build, or this CPU cannot run it (the message says which). */
  'UNSUPPORTED_VARIANT';

/** Thrown when a requested SIMD variant is unknown or the CPU cannot run it. */
export class SimdError extends PaliGemmaError<SimdErrorCode> {
  override name = 'SimdError';
  constructor(message: string, code: SimdErrorCode = 'UNSUPPORTED_VARIANT') {
    super(code, message);
  }
}

/** Why the addon could not load: NOT_FOUND, no binary for this platform; LOAD_FAILED, one was found but the OS refused it. */
export type NativeAddonErrorCode = 'NOT_FOUND' | 'LOAD_FAILED';

/** Thrown on first use of native code when the addon cannot load; the message says how to fix it. */
export class NativeAddonError extends PaliGemmaError<NativeAddonErrorCode> {
  override name = 'NativeAddonError';
}

/** Codes native failures carry (native/errors.h), by the error they become. */
const NATIVE_FILE_CODES: ReadonlySet<string> = new Set<ModelFilesErrorCode>([
  'MAP_FAILED', 'LOCK_FAILED', 'MISSING_TENSOR', 'BAD_TENSOR', 'BAD_SHAPE', 'BAD_METADATA', 'MODEL_FILE_CHANGED',
]);
const NATIVE_CODES: ReadonlySet<string> = new Set(['OUT_OF_MEMORY', 'THREAD_LIMIT']);

/**
 * A native failure as the package's typed error: a file at fault is a ModelFilesError naming it,
 * OUT_OF_MEMORY and THREAD_LIMIT are PaliGemmaErrors. Anything else (argument errors of the internal
 * surface, a bug) is returned unchanged.
 */
function typedNativeError(err: unknown): unknown {
  if (!(err instanceof Error) || isPaliGemmaError(err)) return err;
  const { code, path } = err as { code?: unknown; path?: unknown };
  if (typeof code === 'string' && typeof path === 'string' && NATIVE_FILE_CODES.has(code)) {
    const text = err.message.startsWith(`${path}: `) ? err.message.slice(path.length + 2) : err.message;
    return new ModelFilesError(code as ModelFilesErrorCode, text, path);
  }
  if (typeof code === 'string' && NATIVE_CODES.has(code)) return new PaliGemmaError(code as 'OUT_OF_MEMORY' | 'THREAD_LIMIT', err.message);
  return err;
}

/** `call()`, its throw or its Promise's rejection made typed. */
function typed<T>(call: () => T): T {
  let result: T;
  try {
    result = call();
  } catch (err) {
    throw typedNativeError(err);
  }
  return result instanceof Promise ? (result.catch((err: unknown) => Promise.reject(typedNativeError(err))) as T) : result;
}

/** The shipped addon with typed failures: every function, the NativeModel constructor and every method of it. */
function withTypedErrors(raw: NativeAddon): NativeAddon {
  const addon = { ...raw };
  const functions = addon as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(raw)) {
    if (key !== 'NativeModel' && typeof value === 'function') functions[key] = (...args: unknown[]) => typed(() => value.apply(raw, args));
  }
  const Raw = raw.NativeModel;
  const Typed = class NativeModel extends Raw {
    constructor(spec: NativeModelSpec) {
      try {
        super(spec);
      } catch (err) {
        throw typedNativeError(err);
      }
    }
  };
  for (const key of Object.getOwnPropertyNames(Raw.prototype)) {
    const d = Object.getOwnPropertyDescriptor(Raw.prototype, key)!;
    if (key === 'constructor' || typeof d.value !== 'function') continue;
    const method = d.value as (...args: unknown[]) => unknown;
    Object.defineProperty(Typed.prototype, key, { ...d, value(this: NativeModel, ...args: unknown[]) { return typed(() => method.apply(this, args)); } });
  }
  addon.NativeModel = Typed;
  return addon;
}

const require = createRequire(import.meta.url);

/** The package root: the nearest directory above this module that holds binding.gyp. */
function packageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url)); // lib/, dist/ or dist/cjs/
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'binding.gyp'))) return dir;
    if (path.dirname(dir) === dir) return path.dirname(here);
  }
}

/**
 * The addon file to load: PALIGEMMA_ADDON when set (a specific build, e.g. the cmake-js output), else
 * node-gyp-build's choice (build/Release, else the best match in prebuilds/), which throws when there
 * is none.
 */
export function addonFile(): string {
  const explicit = process.env.PALIGEMMA_ADDON;
  if (explicit) return path.resolve(explicit);
  const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  return nodeGypBuild.resolve(packageRoot());
}

/** Loads the addon; a failure is one NativeAddonError line with the platform, the file(s) tried and the fix. */
function loadAddon(): NativeAddon {
  const where = `${process.platform}-${process.arch} (Node ${process.versions.node})`;
  const toolchain = process.platform === 'win32' ? 'Visual Studio Build Tools and Python 3' : 'Python 3, make and g++ or clang';
  const rebuild = `run \`npm rebuild paligemma\` with a C++ toolchain (${toolchain})`;
  const explicit = process.env.PALIGEMMA_ADDON;
  let file: string;
  try {
    file = addonFile(); // throws only where node-gyp-build finds nothing
  } catch (cause) {
    const root = packageRoot();
    const prebuilds = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    throw new NativeAddonError(
      'NOT_FOUND',
      `no paligemma native addon for ${where}: neither a prebuilt binary in ${prebuilds} nor a build in ${path.join(root, 'build', 'Release')}. ` +
        `Fix: let paligemma's install script run (--ignore-scripts skips it, as pnpm does until the package is approved), or ${rebuild}.`,
      { cause },
    );
  }
  let addon: NativeAddon;
  try {
    addon = require(file) as NativeAddon;
  } catch (cause) {
    const reason = (cause instanceof Error ? cause.message : String(cause)).split('\n')[0];
    throw new NativeAddonError(
      explicit && !existsSync(file) ? 'NOT_FOUND' : 'LOAD_FAILED',
      `the paligemma native addon ${file} does not load on ${where}: ${reason}. ` +
        `Fix: ${explicit ? 'point PALIGEMMA_ADDON at a working build, or unset it' : `${rebuild} to compile it for this system`}.`,
      { cause },
    );
  }
  const requested = process.env.PALIGEMMA_SIMD;
  if (requested) {
    try {
      addon.setSimdVariant(requested);
    } catch (err) {
      throw new SimdError(`PALIGEMMA_SIMD=${requested}: ${(err as Error).message}`);
    }
  }
  return withTypedErrors(addon);
}

let loaded: NativeAddon | undefined;
const addon = (): NativeAddon => (loaded ??= loadAddon());

/**
 * The addon, loaded on first use rather than at import: the pure-JS exports (formats, tokenizer,
 * task parsers…) work even where it cannot load, and the first native call throws NativeAddonError.
 */
export const native: NativeAddon = new Proxy({} as NativeAddon, {
  get: (_target, key) => Reflect.get(addon(), key),
  set: (_target, key, value) => Reflect.set(addon(), key, value),
  has: (_target, key) => Reflect.has(addon(), key),
  ownKeys: () => Reflect.ownKeys(addon()),
  // Reported configurable: the proxy's own (empty) target must not be contradicted.
  getOwnPropertyDescriptor: (_target, key) => {
    const d = Reflect.getOwnPropertyDescriptor(addon(), key);
    return d && { ...d, configurable: true };
  },
});

/**
 * Loads the test addon (build/Release/paligemma_test.so, built beside the shipped addon by `npm ci`
 * and `npm run build:native`; never part of a prebuild), with PALIGEMMA_SIMD applied as to the
 * shipped addon. For tests and benchmarks only.
 */
export function loadTestAddon(): NativeTestAddon {
  const file = path.join(path.dirname(addonFile()), 'paligemma_test.so');
  const module = { exports: {} as NativeTestAddon };
  try {
    process.dlopen(module, file);
  } catch (err) {
    throw new Error(`cannot load the test addon ${file} (built by \`npm run build:native\`): ${(err as Error).message}`);
  }
  const requested = process.env.PALIGEMMA_SIMD;
  if (requested) module.exports.setSimdVariant(requested);
  return module.exports;
}

/** What the CPU supports (cpuid on x64, hwcap on arm64). */
export function cpuFeatures(): CpuFeatures {
  return native.cpuFeatures();
}

/**
 * The SIMD kernel set in use by default: the best one the CPU supports, unless the
 * `PALIGEMMA_SIMD` environment variable (scalar | avx2 | avx512 | neon) chose another at load.
 */
export function simdVariant(): SimdVariantName {
  return native.simdVariant();
}

/** Every kernel set compiled into this build, best first, with whether this CPU can run it. */
export function simdVariants(): SimdVariantInfo[] {
  return native.simdVariants();
}

/** Checks that `name` is a variant this build has and this CPU can run; throws SimdError otherwise. */
export function checkSimdVariant(name: string): SimdVariantName {
  const info = native.simdVariants().find((v) => v.name === name);
  if (!info) {
    const known = native.simdVariants().map((v) => v.name).join(', ');
    throw new SimdError(`unknown SIMD variant '${name}' (this build has: ${known})`);
  }
  if (!info.supported) {
    throw new SimdError(`SIMD variant '${name}' needs ${info.requires}, which this CPU does not have`);
  }
  return info.name;
}
