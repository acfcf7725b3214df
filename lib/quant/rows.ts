/**
 * Streaming quantization of one tensor: source bytes arrive in chunks of any size, are regrouped into
 * chunks of whole rows (~4 MiB) and quantized natively off the JS thread, a few chunks in flight at a
 * time, and come out in order. Memory stays at (in flight + 1) chunks whatever the tensor's size.
 */
import os from 'node:os';

import { GGML_TYPES, ggmlTensorBytes } from '../gguf/ggml-types.js';
import type { GGMLTypeName } from '../gguf/types.js';
import { QuantizeError } from './errors.js';
import { native } from '../native.js';

/** Source element types the quantizer reads. */
export type SourceFloatType = 'F32' | 'F16' | 'BF16';

const SOURCE_ID: Record<SourceFloatType, number> = { F32: 0, F16: 1, BF16: 30 };
const SOURCE_BYTES: Record<SourceFloatType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Source bytes per native call. */
const CHUNK_BYTES = 4 * 2 ** 20;

/** What is being quantized, for the native call and for error messages. */
export interface RowJob {
  /** Tensor name, for errors. */
  name: string;
  from: SourceFloatType;
  /** A quantized type (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K). */
  to: GGMLTypeName;
  /** Elements per row (ggml dims[0]). */
  rowLength: number;
  /** The file the tensor comes from, for errors. */
  path?: string;
  signal?: AbortSignal;
  /** Native calls in flight (default: the number of CPUs, at most 4). */
  concurrency?: number;
}

/** Default number of chunks quantized at once. */
export function defaultConcurrency(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

/** Regroups `chunks` into fresh, aligned buffers of at most `maxRows` whole rows of `rowBytes` each. */
async function* wholeRows(chunks: AsyncIterable<Uint8Array>, rowBytes: number, maxRows: number, name: string): AsyncGenerator<{ bytes: Uint8Array; rows: number }> {
  let buf = new Uint8Array(rowBytes * maxRows);
  let filled = 0;
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.length; ) {
      const n = Math.min(chunk.length - at, buf.length - filled);
      buf.set(chunk.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === buf.length) {
        yield { bytes: buf, rows: maxRows };
        buf = new Uint8Array(rowBytes * maxRows);
        filled = 0;
      }
    }
  }
  if (filled % rowBytes !== 0) throw new QuantizeError('IO', `tensor '${name}' ends inside a row`);
  if (filled > 0) yield { bytes: buf.subarray(0, filled), rows: filled / rowBytes };
}

/**
 * Quantizes the rows whose source bytes `chunks` delivers, yielding the quantized bytes in order. Throws
 * QuantizeError naming the tensor and row for NaN/±inf or values too large for the type, and the
 * signal's reason when it aborts.
 */
export async function* quantizeRowStream(chunks: AsyncIterable<Uint8Array>, job: RowJob): AsyncGenerator<Uint8Array> {
  const type = GGML_TYPES[job.to];
  const k = job.rowLength;
  if (k % type.blockSize !== 0) throw new QuantizeError('BAD_OPTION', `tensor '${job.name}' has rows of ${k} elements, not a multiple of ${job.to}'s block size ${type.blockSize}`, job.path);
  const rowBytesIn = k * SOURCE_BYTES[job.from];
  const rowBytesOut = ggmlTensorBytes(type, k);
  const maxRows = Math.max(1, Math.floor(CHUNK_BYTES / rowBytesIn));
  const concurrency = job.concurrency ?? defaultConcurrency();

  const inFlight: Promise<Uint8Array>[] = [];
  let firstRow = 0;
  const quantize = async (src: Uint8Array, rows: number, row0: number): Promise<Uint8Array> => {
    const dst = new Uint8Array(rows * rowBytesOut);
    const problem = await native.quantizeRowsAsync(type.id, src, SOURCE_ID[job.from], rows, k, dst);
    if (problem) {
      const code = problem.what === 'NaN' || problem.what === 'infinity' ? 'NON_FINITE' : 'OUT_OF_RANGE';
      const what = code === 'NON_FINITE' ? `element ${problem.element} is ${problem.what}` : `the block at element ${problem.element} has ${problem.what}`;
      throw new QuantizeError(code, `tensor '${job.name}' row ${row0 + problem.row}: ${what}; cannot quantize it to ${job.to}`, job.path);
    }
    return dst;
  };
  for await (const { bytes, rows } of wholeRows(chunks, rowBytesIn, maxRows, job.name)) {
    job.signal?.throwIfAborted();
    const p = quantize(bytes, rows, firstRow);
    p.catch(() => undefined); // awaited below, in order; this only keeps an early failure from being "unhandled"
    inFlight.push(p);
    firstRow += rows;
    if (inFlight.length >= concurrency) yield await inFlight.shift()!;
  }
  while (inFlight.length > 0) {
    job.signal?.throwIfAborted();
    yield await inFlight.shift()!;
  }
}
