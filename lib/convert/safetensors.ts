/**
 * Safetensors reader: header parsing with bounded reads, sharded checkpoints
 * (`model.safetensors.index.json`) and chunked streaming of one tensor's bytes. A checkpoint is never
 * loaded whole; only headers are held in memory.
 *
 * File layout: u64 LE header length N, N bytes of UTF-8 JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { str: str } }`, then the data
 * section; offsets are relative to the data section.
 */
import { stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { openRegularFile, readRegularFile } from '../files.js';
import { SafetensorsError, safetensorsFileError } from './errors.js';

/** The element types the converter reads. */
export type SafetensorsDType = 'F32' | 'F16' | 'BF16';

/** Bytes per element of each supported dtype. */
export const DTYPE_BYTES: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Headers above this size are rejected before being read (real ones are well under 1 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** One tensor of a checkpoint, located in its file. */
export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsDType;
  /** PyTorch order: shape[last] is contiguous. */
  shape: number[];
  /** The file holding the tensor. */
  path: string;
  /** Absolute byte offset of the tensor's data in `path`. */
  offset: number;
  /** Data size in bytes (elements × dtype size). */
  size: number;
}

/** A parsed safetensors header. */
export interface SafetensorsFile {
  path: string;
  fileSize: number;
  /** Absolute offset of the data section (8 + header length). */
  dataOffset: number;
  /** The `__metadata__` string map, or `{}`. */
  metadata: Record<string, string>;
  /** Tensors in header order. */
  tensors: Map<string, SafetensorsTensor>;
}

/** A checkpoint: one safetensors file or the shards named by an index. */
export interface SafetensorsCheckpoint {
  dir: string;
  /** The safetensors files read, in order. */
  files: string[];
  tensors: Map<string, SafetensorsTensor>;
}

const SUPPORTED: readonly string[] = ['F32', 'F16', 'BF16'];
const MAX_DIMS = 8;

function ioError(err: unknown, file: string): SafetensorsError {
  return new SafetensorsError('IO', (err as Error).message, file);
}

/** Reads exactly `length` bytes at `position`, or fails with TRUNCATED. */
async function readExactly(fh: FileHandle, length: number, position: number, file: string): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new SafetensorsError('TRUNCATED', `file ended ${length - done} bytes early`, file);
    done += bytesRead;
  }
  return buf;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads and validates the header of one safetensors file. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsFile> {
  const { handle: fh, size: fileSize } = await openRegularFile(file, 'a safetensors file', safetensorsFileError());
  try {
    if (fileSize < 8) throw new SafetensorsError('TRUNCATED', `file is ${fileSize} bytes, too short for a header`, file);
    const lengthBytes = await readExactly(fh, 8, 0, file);
    const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new SafetensorsError('HEADER_TOO_LARGE', `header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`, file);
    }
    if (headerLength > BigInt(fileSize - 8)) {
      throw new SafetensorsError('TRUNCATED', `header length ${headerLength} exceeds the ${fileSize}-byte file`, file);
    }
    const n = Number(headerLength);
    const headerBytes = await readExactly(fh, n, 8, file);
    return parseHeader(headerBytes, file, fileSize, 8 + n);
  } catch (err) {
    if (err instanceof SafetensorsError) throw err;
    throw ioError(err, file);
  } finally {
    await fh.close();
  }
}

/** Validates the JSON header; `dataOffset` is where the data section starts in the file. */
function parseHeader(bytes: Uint8Array, file: string, fileSize: number, dataOffset: number): SafetensorsFile {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new SafetensorsError('BAD_HEADER', `header is not valid UTF-8 JSON (${(err as Error).message})`, file);
  }
  if (!isPlainObject(json)) throw new SafetensorsError('BAD_HEADER', 'header is not a JSON object', file);

  const dataSize = fileSize - dataOffset;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensor>();
  const spans: { name: string; begin: number; end: number }[] = [];

  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) throw new SafetensorsError('BAD_HEADER', '__metadata__ is not an object', file);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw new SafetensorsError('BAD_HEADER', `__metadata__.${k} is not a string`, file);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (!isPlainObject(entry)) throw new SafetensorsError('BAD_HEADER', `${where} is not an object`, file);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string') throw new SafetensorsError('BAD_HEADER', `${where} has no dtype`, file);
    if (!SUPPORTED.includes(dtype)) {
      throw new SafetensorsError('UNSUPPORTED_DTYPE', `${where} has dtype ${dtype}; only F32, F16 and BF16 are supported`, file);
    }
    const itemBytes = DTYPE_BYTES[dtype as SafetensorsDType];
    if (!Array.isArray(shape) || shape.length > MAX_DIMS || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError('BAD_SHAPE', `${where} has shape ${JSON.stringify(shape)}; expected up to ${MAX_DIMS} non-negative integers`, file);
    }
    // Multiply step by step against the data size so a huge shape cannot overflow before it is caught.
    let size = itemBytes;
    for (const d of shape as number[]) {
      size *= d;
      if (size > dataSize) {
        throw new SafetensorsError('BAD_SHAPE', `${where} with shape [${shape.join(', ')}] does not fit in the ${dataSize}-byte data section`, file);
      }
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw new SafetensorsError('BAD_OFFSETS', `${where} has data_offsets ${JSON.stringify(offsets)}; expected [begin, end]`, file);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataSize) {
      throw new SafetensorsError('BAD_OFFSETS', `${where} has data_offsets [${begin}, ${end}] outside the ${dataSize}-byte data section`, file);
    }
    if (end - begin !== size) {
      throw new SafetensorsError('BAD_OFFSETS', `${where} spans ${end - begin} bytes but ${dtype} [${shape.join(', ')}] needs ${size}`, file);
    }
    tensors.set(name, { name, dtype: dtype as SafetensorsDType, shape: [...shape], path: file, offset: dataOffset + begin, size });
    spans.push({ name, begin, end });
  }

  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!;
    const cur = spans[i]!;
    if (cur.begin < prev.end) {
      throw new SafetensorsError('OVERLAP', `tensors "${prev.name}" and "${cur.name}" overlap in the data section`, file);
    }
  }
  return { path: file, fileSize, dataOffset, metadata, tensors };
}

/** Reads the shard list of `model.safetensors.index.json`; shard names must be plain file names. */
async function readIndex(indexPath: string): Promise<Map<string, string>> {
  let json: unknown;
  try {
    json = JSON.parse((await readRegularFile(indexPath, 'a checkpoint index', safetensorsFileError('BAD_INDEX'), MAX_HEADER_BYTES)).toString('utf8'));
  } catch (err) {
    if (err instanceof SafetensorsError) throw err;
    if (err instanceof SyntaxError) throw new SafetensorsError('BAD_INDEX', `index is not valid JSON (${err.message})`, indexPath);
    throw ioError(err, indexPath);
  }
  const weightMap = isPlainObject(json) ? json.weight_map : undefined;
  if (!isPlainObject(weightMap)) throw new SafetensorsError('BAD_INDEX', 'index has no "weight_map" object', indexPath);
  const shardOf = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || shard === '' || shard !== path.basename(shard) || shard === '.' || shard === '..' || shard.includes('\\')) {
      throw new SafetensorsError('BAD_INDEX', `weight_map["${name}"] = ${JSON.stringify(shard)} is not a file name in the checkpoint directory`, indexPath);
    }
    shardOf.set(name, shard);
  }
  return shardOf;
}

/**
 * Opens the checkpoint in `dir`: `model.safetensors.index.json` (sharded) when present, else
 * `model.safetensors`. Only headers are read.
 */
export async function openCheckpoint(dir: string): Promise<SafetensorsCheckpoint> {
  const indexPath = path.join(dir, 'model.safetensors.index.json');
  const singlePath = path.join(dir, 'model.safetensors');
  const exists = async (p: string) => stat(p).then((s) => s.isFile(), () => false);

  if (await exists(indexPath)) {
    const shardOf = await readIndex(indexPath);
    const shardNames = [...new Set(shardOf.values())];
    const tensors = new Map<string, SafetensorsTensor>();
    const headers = new Map<string, SafetensorsFile>();
    for (const shard of shardNames) {
      const header = await readSafetensorsHeader(path.join(dir, shard));
      headers.set(shard, header);
      for (const [name, t] of header.tensors) {
        const other = tensors.get(name);
        if (other) throw new SafetensorsError('DUPLICATE_TENSOR', `tensor "${name}" is in both ${path.basename(other.path)} and ${shard}`, indexPath);
        tensors.set(name, t);
      }
    }
    for (const [name, shard] of shardOf) {
      if (!headers.get(shard)!.tensors.has(name)) {
        throw new SafetensorsError('MISSING_TENSOR', `the index puts tensor "${name}" in ${shard}, which does not contain it`, indexPath);
      }
    }
    return { dir, files: shardNames.map((s) => path.join(dir, s)), tensors };
  }
  if (await exists(singlePath)) {
    const header = await readSafetensorsHeader(singlePath);
    return { dir, files: [singlePath], tensors: header.tensors };
  }
  throw new SafetensorsError('IO', 'no model.safetensors or model.safetensors.index.json found', dir);
}

/** Default streaming chunk: large enough for throughput, small next to any big tensor. */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Streams a tensor's bytes in chunks of about `chunkBytes` (a multiple of the element size), each
 * a fresh buffer the caller may keep. Only one chunk is held at a time.
 */
export async function* readTensorChunks(tensor: SafetensorsTensor, chunkBytes = DEFAULT_CHUNK_BYTES): AsyncGenerator<Uint8Array> {
  const item = DTYPE_BYTES[tensor.dtype];
  const step = Math.max(item, chunkBytes - (chunkBytes % item));
  const { handle: fh } = await openRegularFile(tensor.path, 'a safetensors file', safetensorsFileError());
  try {
    for (let done = 0; done < tensor.size; done += step) {
      const length = Math.min(step, tensor.size - done);
      try {
        yield await readExactly(fh, length, tensor.offset + done, tensor.path);
      } catch (err) {
        if (err instanceof SafetensorsError) throw err;
        throw ioError(err, tensor.path);
      }
    }
  } finally {
    await fh.close();
  }
}

/** Reads a whole tensor (for small tensors and tests; conversion streams with `readTensorChunks`). */
export async function readTensorBytes(tensor: SafetensorsTensor): Promise<Uint8Array> {
  const out = new Uint8Array(tensor.size);
  let at = 0;
  for await (const chunk of readTensorChunks(tensor)) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
