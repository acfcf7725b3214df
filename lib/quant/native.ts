/**
 * The quantizer's part of the native addon (native/bind_quant.cc), typed here until lib/native.ts
 * types the whole surface in one place.
 */
import { native } from '../native.js';

/** Where `quantizeRowsAsync` stopped: the first row holding NaN/±inf or overflowing the type's scales. */
export interface RowProblem {
  row: number;
  element: number;
  what: string;
}

export interface QuantAddon {
  /**
   * Quantizes `rows` rows of `k` elements of `srcType` (ggml id 0 F32, 1 F16, 30 BF16; `src` aligned to its
   * element size) to the ggml type `type` into `dst` (rows × row bytes), off the JS thread.
   */
  quantizeRowsAsync(type: number, src: Uint8Array, srcType: number, rows: number, k: number, dst: Uint8Array): Promise<RowProblem | null>;
  /** The values of `rows` quantized rows of `k` elements. */
  dequantizeRows(type: number, src: Uint8Array, rows: number, k: number): Float32Array;
}

export const quantAddon = native as unknown as QuantAddon;
