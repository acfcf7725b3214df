/**
 * The matrix kernels (GEMM, GEMV, patch embedding) called from JS, for tests and benchmarks: the
 * test addon's bindings (lib/native.ts, NativeTestAddon) with arguments by name, and the shipped
 * addon's gemmAsync. Each call returns a fresh Float32Array and accepts an optional SIMD variant
 * name to force one kernel set (default: the process default).
 */
import {
  loadTestAddon, native, type JobTimes, type NativeMatmulArgs, type SimdVariantName, type WeightData, type WeightTypeName,
} from '../../../lib/native.js';

export type { JobTimes, WeightData } from '../../../lib/native.js';
/** How a weight matrix is stored. */
export type WeightType = WeightTypeName;

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

const addon = loadTestAddon();

function matmulArgs(a: MatmulArgs): NativeMatmulArgs {
  return [a.x, a.w, a.wtype, a.bias ?? null, a.n, a.k, a.m, a.simd, a.ldx, a.ldy];
}

/** Blocked GEMM (the many-rows path: prefill, vision tower). */
export function gemm(args: MatmulArgs): Float32Array {
  return addon.gemm(...matmulArgs(args));
}

/**
 * The GEMM with a GeGLU's up projection folded into its gate (MatmulArgs::geglu, as the model's
 * feed-forward runs it): `gate` holds the gate product in y's layout ((n - 1) · ldy + m values), the
 * result is the variant's geglu(gate, x · wᵀ (+ bias)) in that layout, the gaps between rows kept.
 */
export function gemmGeglu(args: MatmulArgs, gate: Float32Array): Float32Array {
  return addon.gemmGeglu(gate, ...matmulArgs(args));
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
  return native.gemmAsync(...matmulArgs(args));
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
