/**
 * Typed wrappers over the native matrix kernels (GEMM, GEMV, patch embedding), their async forms and
 * the serial work queue. They exist for tests and benchmarks: the model's layer loops call the same
 * kernels from C++. Every call takes TypedArrays and returns a fresh Float32Array, and accepts an
 * optional SIMD variant name to force one kernel set (default: the process default).
 * Bad shapes, lengths or types throw TypeError/RangeError from the native side.
 */
import { native, type SimdVariantName } from '../native.js';

/** How a weight matrix is stored: F32 values, or the raw bits of F16 / BF16 values. */
export type WeightType = 'f32' | 'f16' | 'bf16';

/** Weight elements: a Float32Array for 'f32', a Uint16Array of raw bits for 'f16' and 'bf16'. */
export type WeightData = Float32Array | Uint16Array;

/**
 * y[n, m] = x[n, k] · w[m, k]ᵀ (+ bias[m]): w holds m rows of k contiguous elements (the GGUF layout
 * of a PyTorch [m, k] Linear weight).
 */
export interface MatmulArgs {
  /** Input rows: n rows of k values, `ldx` apart. */
  x: Float32Array;
  /** Exactly m · k weight elements. */
  w: WeightData;
  wtype: WeightType;
  /** m values, or null. */
  bias?: Float32Array | null;
  n: number;
  k: number;
  m: number;
  /** Elements between rows of x (default k). */
  ldx?: number;
  /** Elements between rows of the result (default m); the result holds (n - 1) · ldy + m values. */
  ldy?: number;
  /** Force a SIMD variant (default: the process default). */
  simd?: SimdVariantName;
}

/** Conv2d with kernel = stride = patch on a CHW image, as patch gather + GEMM. */
export interface PatchEmbedArgs {
  /** channels · height · width values, channel-major (CHW). */
  pixels: Float32Array;
  channels: number;
  height: number;
  width: number;
  patch: number;
  /** hidden · channels · patch · patch elements: PyTorch [hidden, channels, patch, patch] flattened. */
  weight: WeightData;
  wtype: WeightType;
  /** hidden values, or null. */
  bias?: Float32Array | null;
  hidden: number;
  simd?: SimdVariantName;
}

/** When a job ran on its worker thread, in milliseconds of a monotonic clock. */
export interface JobTimes {
  start: number;
  end: number;
}

type MatmulFn = (x: Float32Array, w: WeightData, wtype: WeightType, bias: Float32Array | null, n: number,
  k: number, m: number, simd?: string, ldx?: number, ldy?: number) => Float32Array;

/** The native queue object (native/bind_matmul.cc). */
interface NativeWorkQueue {
  gemm(...args: Parameters<MatmulFn>): Promise<Float32Array>;
  testSleep(ms: number, failWith?: string): Promise<JobTimes>;
  readonly pending: number;
}

/** The addon functions this module wraps (registered by native/bind_matmul.cc). */
interface MatmulAddon {
  gemm: MatmulFn;
  gemv: MatmulFn;
  gemmAsync(...args: Parameters<MatmulFn>): Promise<Float32Array>;
  patchEmbed(pixels: Float32Array, channels: number, height: number, width: number, patch: number,
    weight: WeightData, wtype: WeightType, bias: Float32Array | null, hidden: number, simd?: string): Float32Array;
  timeMatmul(kind: 'gemm' | 'gemv', reps: number, ...args: Parameters<MatmulFn>): Float64Array;
  poolSize(): number;
  testSleepAsync(ms: number, failWith?: string): Promise<JobTimes>;
  testPoolChurnAsync(count: number, threads: number): Promise<void>;
  WorkQueue: new () => NativeWorkQueue;
}

const addon = native as unknown as MatmulAddon;

function matmulArgs(a: MatmulArgs): Parameters<MatmulFn> {
  return [a.x, a.w, a.wtype, a.bias ?? null, a.n, a.k, a.m, a.simd, a.ldx, a.ldy];
}

/** Blocked GEMM (the many-rows path: prefill, vision tower). */
export function gemm(args: MatmulArgs): Float32Array {
  return addon.gemm(...matmulArgs(args));
}

/**
 * Streaming GEMV (the few-rows path: decoding): reads each weight from memory once, and gives each
 * row of x the result it gives that row alone.
 */
export function gemv(args: MatmulArgs): Float32Array {
  return addon.gemv(...matmulArgs(args));
}

/**
 * Runs gemm() or gemv() `reps` times back to back into one output, the way the model's layer loops
 * call them (no JS call, allocation or idle pool in between), and returns each run's milliseconds.
 * For benchmarks; blocks the calling thread.
 */
export function timeMatmul(kind: 'gemm' | 'gemv', reps: number, args: MatmulArgs): Float64Array {
  return addon.timeMatmul(kind, reps, ...matmulArgs(args));
}

/**
 * gemm() on a libuv worker thread. The arrays must not be modified or transferred until the
 * Promise settles. Invalid arguments reject the Promise.
 */
export async function gemmAsync(args: MatmulArgs): Promise<Float32Array> {
  return addon.gemmAsync(...matmulArgs(args));
}

/** Patch embedding: [(height/patch) · (width/patch), hidden], patches in row-major grid order. */
export function patchEmbed(a: PatchEmbedArgs): Float32Array {
  return addon.patchEmbed(a.pixels, a.channels, a.height, a.width, a.patch, a.weight, a.wtype, a.bias ?? null,
    a.hidden, a.simd);
}

/** Threads of the shared kernel pool (physical cores by default). */
export function poolSize(): number {
  return addon.poolSize();
}

/** Test hook: sleeps `ms` on a libuv worker thread, then resolves, or rejects with `failWith`. */
export async function testSleepAsync(ms: number, failWith?: string): Promise<JobTimes> {
  return addon.testSleepAsync(ms, failWith);
}

/** Test hook: creates and destroys `count` thread pools of `threads` threads off the JS thread. */
export async function testPoolChurnAsync(count: number, threads: number): Promise<void> {
  return addon.testPoolChurnAsync(count, threads);
}

/**
 * A serial queue of native jobs: each starts after the previous one settled, the way a model
 * serialises concurrent requests. Jobs keep running if the queue object is dropped.
 */
export class WorkQueue {
  readonly #queue = new addon.WorkQueue();

  /** gemm() queued behind the earlier jobs. */
  async gemm(args: MatmulArgs): Promise<Float32Array> {
    return this.#queue.gemm(...matmulArgs(args));
  }

  /** Test hook: a job that sleeps `ms`, then resolves with when it ran, or rejects with `failWith`. */
  async testSleep(ms: number, failWith?: string): Promise<JobTimes> {
    return this.#queue.testSleep(ms, failWith);
  }

  /** Jobs enqueued and not yet settled, including the running one. */
  get pending(): number {
    return this.#queue.pending;
  }
}
