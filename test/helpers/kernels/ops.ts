/**
 * The non-matmul kernels (attention, norms, activations, RoPE, embedding gather) called from JS, for
 * tests and benchmarks: the test addon's bindings (lib/native.ts, NativeTestAddon) with shapes by
 * name. Each call returns a fresh Float32Array and accepts an optional SIMD variant name to force
 * one kernel set (default: the process default).
 */
import { loadTestAddon, type AttentionShape, type SimdVariantName, type WeightData, type WeightTypeName } from '../../../lib/native.js';

export type { AttentionShape, MaskMode } from '../../../lib/native.js';
/** Element type of an embedding table. */
export type EmbedType = WeightTypeName;

const addon = loadTestAddon();

/** Row layout of a row-wise op: `rows` rows of `dim` used elements, `ld` apart in the input. */
export interface RowsShape {
  /** Default: as many whole rows of stride `ld` as the input holds. */
  rows?: number;
  dim: number;
  /** Input row stride (default dim). */
  ld?: number;
}

function rowsOf(x: Float32Array, s: RowsShape): number {
  if (s.rows !== undefined) return s.rows;
  const ld = s.ld ?? s.dim;
  // A bad dim or ld is reported by the native check; 0 rows keeps this arithmetic finite.
  return s.dim >= 1 && ld >= 1 && x.length >= s.dim ? Math.floor((x.length - s.dim) / ld) + 1 : 0;
}

/**
 * Multi-head attention softmax(scale · q kᵀ + mask) v with grouped KV heads.
 * q: nQ rows of nHeads · headDim; k, v: nKv rows of nKvHeads · headDim. Returns nQ · outStride values.
 */
export function attention(
  q: Float32Array, k: Float32Array, v: Float32Array, shape: AttentionShape, simd?: SimdVariantName,
): Float32Array {
  return addon.attention(q, k, v, shape, simd);
}

/** Layout of a norm call: rows as in RowsShape, plus epsilon and the output row stride. */
export interface NormShape extends RowsShape {
  eps: number;
  /** Output row stride (default dim); the result holds rows · ldOut values, gaps zero. */
  ldOut?: number;
}

/** Row-wise LayerNorm: (x - mean) / sqrt(var + eps) · w + b. */
export function layerNorm(
  x: Float32Array, w: Float32Array, b: Float32Array, shape: NormShape, simd?: SimdVariantName,
): Float32Array {
  const { dim, eps } = shape;
  return addon.layerNorm(x, w, b, rowsOf(x, shape), dim, eps, shape.ld ?? dim, shape.ldOut ?? dim, simd);
}

/** Row-wise RMSNorm: x / sqrt(mean(x²) + eps) · w (weights used as stored: GGUF Gemma norms include the +1). */
export function rmsNorm(x: Float32Array, w: Float32Array, shape: NormShape, simd?: SimdVariantName): Float32Array {
  const { dim, eps } = shape;
  return addon.rmsNorm(x, w, rowsOf(x, shape), dim, eps, shape.ld ?? dim, shape.ldOut ?? dim, simd);
}

/** tanh-approximated GELU: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), elementwise. */
export function geluTanh(x: Float32Array, simd?: SimdVariantName): Float32Array {
  return addon.geluTanh(x, simd);
}

/** GeGLU: geluTanh(gate) · up, elementwise over equal-length arrays. */
export function geglu(gate: Float32Array, up: Float32Array, simd?: SimdVariantName): Float32Array {
  return addon.geglu(gate, up, simd);
}

/** a + b, elementwise over equal-length arrays. */
export function add(a: Float32Array, b: Float32Array, simd?: SimdVariantName): Float32Array {
  return addon.add(a, b, simd);
}

/** x · s, elementwise. */
export function scale(x: Float32Array, s: number, simd?: SimdVariantName): Float32Array {
  return addon.scale(x, s, simd);
}

/** Layout and rotation of a NeoX RoPE call. */
export interface RopeShape {
  nHeads: number;
  /** Even; pairs (i, i + headDim/2) rotate by positions[row] · theta^(-2i/headDim). */
  headDim: number;
  /** Row stride (default nHeads · headDim). */
  ld?: number;
  /** One position per row. */
  positions: Int32Array;
  theta: number;
}

/** NeoX (rotate-half) rotary embedding of every head of every row; returns a rotated copy of x. */
export function ropeNeox(x: Float32Array, shape: RopeShape, simd?: SimdVariantName): Float32Array {
  const ld = shape.ld ?? shape.nHeads * shape.headDim;
  return addon.ropeNeox(x, shape.positions.length, shape.nHeads, shape.headDim, ld, shape.positions, shape.theta,
    simd);
}

/**
 * Gathers table rows `ids` (each `dim` wide) widened to F32. F16/BF16 tables are passed as their raw
 * 16-bit words in a Uint16Array. Ids outside the table throw a RangeError.
 */
export function embedRows(
  table: WeightData, type: EmbedType, dim: number, ids: Int32Array, simd?: SimdVariantName,
): Float32Array {
  return addon.embedRows(table, type, dim, ids, simd);
}
