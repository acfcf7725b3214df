/**
 * GGUF writer: validates the whole input, writes a v3 header with tensor offsets it computes itself, then
 * streams each tensor's data to its aligned place. Tensors without data stay holes (sparse on disk).
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import { GGUFError } from './errors.js';
import { GGML_TYPES, ggmlTensorBytes, isGGMLTypeName } from './ggml-types.js';
import { alignUp, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_DIMS } from './reader.js';
import {
  GGUF_VALUE_TYPE_IDS,
  type GGUFArrayValue,
  type GGUFTensorData,
  type GGUFTensorInput,
  type GGUFValue,
  type GGUFWriteInput,
} from './types.js';

const GGUF_VERSION = 3;
/** Same bound as the reader's, so whatever is written can be read back. */
const MAX_ARRAY_DEPTH = 16;
/** Largest single write; one huge ArrayBufferView is written in slices of this size. */
const MAX_WRITE = 256 * 2 ** 20;

/** Range and typed-array class of each numeric item type. */
const NUMERIC = {
  u8: { size: 1, min: 0, max: 0xff, array: Uint8Array },
  i8: { size: 1, min: -0x80, max: 0x7f, array: Int8Array },
  u16: { size: 2, min: 0, max: 0xffff, array: Uint16Array },
  i16: { size: 2, min: -0x8000, max: 0x7fff, array: Int16Array },
  u32: { size: 4, min: 0, max: 0xffffffff, array: Uint32Array },
  i32: { size: 4, min: -0x80000000, max: 0x7fffffff, array: Int32Array },
  f32: { size: 4, min: -Infinity, max: Infinity, array: Float32Array },
  f64: { size: 8, min: -Infinity, max: Infinity, array: Float64Array },
  u64: { size: 8, min: 0n, max: 2n ** 64n - 1n, array: BigUint64Array },
  i64: { size: 8, min: -(2n ** 63n), max: 2n ** 63n - 1n, array: BigInt64Array },
} as const;
type NumericType = keyof typeof NUMERIC;

/** A tensor with its validated layout. */
interface PlannedTensor {
  input: GGUFTensorInput;
  /** Offset relative to the data section. */
  offset: number;
  size: number;
}

/**
 * Writes a GGUF v3 file to `path` (replacing it). Metadata is written in iteration order; tensor offsets
 * are assigned in order, each aligned to `general.alignment` (default 32). Tensor data is streamed and must
 * have exactly the tensor's byte size; a tensor without data is left as a hole of zeros. Invalid input is
 * rejected with {@link GGUFError} `INVALID_INPUT` before the file is touched where possible; if the data
 * of a tensor turns out wrong while streaming, the partial file is removed.
 */
export async function writeGGUF(path: string, input: GGUFWriteInput): Promise<void> {
  const invalid = (message: string): never => {
    throw new GGUFError('INVALID_INPUT', message, path);
  };
  const metadata = metadataEntries(input?.metadata, invalid);
  const alignment = alignmentOf(metadata, invalid);
  const tensors = planTensors(input?.tensors, alignment, invalid);
  const header = encodeHeader(metadata, tensors);
  const dataOffset = alignUp(header.length, alignment);
  const last = tensors.at(-1);
  const fileSize = last ? dataOffset + alignUp(last.offset + last.size, alignment) : dataOffset;

  let fh: FileHandle;
  try {
    fh = await open(path, 'w');
  } catch (cause) {
    throw new GGUFError('IO', `cannot create: ${(cause as Error).message}`, path, { cause });
  }
  try {
    await writeAll(fh, header, 0, path);
    for (const t of tensors) {
      if (t.input.data !== undefined) await writeTensorData(fh, t, dataOffset + t.offset, path);
    }
    // Extending the file leaves the padding and data-less tensors as holes that read back as zeros.
    await fh.truncate(fileSize).catch((cause) => {
      throw new GGUFError('IO', `cannot set the file size: ${(cause as Error).message}`, path, { cause });
    });
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(path, { force: true }).catch(() => undefined);
    throw err;
  }
}

function metadataEntries(
  metadata: GGUFWriteInput['metadata'] | undefined,
  invalid: (message: string) => never,
): [string, GGUFValue][] {
  if (metadata === null || typeof metadata !== 'object') invalid('metadata must be a Map or a plain object');
  const entries = metadata instanceof Map ? [...metadata] : Object.entries(metadata);
  for (const [key, value] of entries) {
    if (typeof key !== 'string') invalid(`metadata key ${String(key)} is not a string`);
    if (!isWellFormed(key)) invalid(`metadata key '${key}' contains a lone surrogate`);
    checkValue(value, `metadata '${key}'`, 0, invalid);
  }
  return entries;
}

function alignmentOf(entries: [string, GGUFValue][], invalid: (message: string) => never): number {
  const value = entries.find(([key]) => key === 'general.alignment')?.[1];
  if (value === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (value.type !== 'u32') invalid(`general.alignment must be a u32, not ${value.type}`);
  const a = value.value as number;
  if (a === 0 || (a & (a - 1)) !== 0) invalid(`general.alignment ${a} is not a power of two`);
  return a;
}

/** Throws unless `value` is a well-formed GGUFValue whose payload matches its declared type. */
function checkValue(value: GGUFValue, what: string, depth: number, invalid: (message: string) => never): void {
  if (value === null || typeof value !== 'object') invalid(`${what} is not a { type, value } object`);
  const { type } = value as { type: unknown };
  const v: unknown = value.value;
  if (type === 'array') return checkArray(value as GGUFArrayValue, what, depth, invalid);
  if (type === 'string') {
    if (typeof v !== 'string') invalid(`${what} is declared string but holds ${typeof v}`);
    if (!isWellFormed(v as string)) invalid(`${what} contains a lone surrogate (not encodable as UTF-8)`);
    return;
  }
  if (type === 'bool') {
    if (typeof v !== 'boolean') invalid(`${what} is declared bool but holds ${typeof v}`);
    return;
  }
  if (typeof type !== 'string' || !Object.hasOwn(NUMERIC, type)) invalid(`${what} has unknown type ${String(type)}`);
  const { min, max } = NUMERIC[type as NumericType];
  if (typeof min === 'bigint') {
    if (typeof v !== 'bigint') invalid(`${what} is declared ${type} but holds ${typeof v} (use a bigint)`);
  } else if (typeof v !== 'number') {
    invalid(`${what} is declared ${type} but holds ${typeof v}`);
  } else if (type !== 'f32' && type !== 'f64' && !Number.isInteger(v)) {
    invalid(`${what} is declared ${type} but holds the non-integer ${v}`);
  }
  if ((v as number | bigint) < min || (v as number | bigint) > max) invalid(`${what} = ${String(v)} is out of range for ${type}`);
}

function checkArray(array: GGUFArrayValue, what: string, depth: number, invalid: (message: string) => never): void {
  if (depth >= MAX_ARRAY_DEPTH) invalid(`${what} nests arrays deeper than ${MAX_ARRAY_DEPTH}`);
  const { itemType, value } = array as { itemType: unknown; value: unknown };
  if (typeof itemType === 'string' && Object.hasOwn(NUMERIC, itemType)) {
    const expected = NUMERIC[itemType as NumericType].array;
    if (!(value instanceof expected)) invalid(`${what} is an array of ${itemType} but does not hold a ${expected.name}`);
    return;
  }
  if (itemType !== 'bool' && itemType !== 'string' && itemType !== 'array') invalid(`${what} has unknown item type ${String(itemType)}`);
  if (!Array.isArray(value)) invalid(`${what} is an array of ${itemType} but does not hold a JS array`);
  const items = value as unknown[];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (itemType === 'bool' && typeof item !== 'boolean') invalid(`${what}[${i}] is not a boolean`);
    if (itemType === 'string' && (typeof item !== 'string' || !isWellFormed(item))) {
      invalid(`${what}[${i}] is not a well-formed string`);
    }
    if (itemType === 'array') {
      if (item === null || typeof item !== 'object' || (item as { type?: unknown }).type !== 'array') {
        invalid(`${what}[${i}] is not an array value`);
      }
      checkArray(item as GGUFArrayValue, `${what}[${i}]`, depth + 1, invalid);
    }
  }
}

/** Validates the tensor table and assigns each tensor an aligned offset in the data section. */
function planTensors(
  tensors: GGUFTensorInput[] | undefined,
  alignment: number,
  invalid: (message: string) => never,
): PlannedTensor[] {
  if (!Array.isArray(tensors)) invalid('tensors must be an array');
  const names = new Set<string>();
  const planned: PlannedTensor[] = [];
  let offset = 0;
  for (const t of tensors!) {
    const name: unknown = t?.name;
    if (typeof name !== 'string' || !isWellFormed(name)) invalid(`tensor name ${String(name)} is not a well-formed string`);
    if (names.has(t.name)) invalid(`tensor '${t.name}' appears twice`);
    names.add(t.name);
    if (!isGGMLTypeName(t.type)) invalid(`tensor '${t.name}' has unknown type ${String(t.type)}`);
    const type = GGML_TYPES[t.type];
    const dims: unknown = t.dims;
    if (!Array.isArray(dims) || dims.length < 1 || dims.length > GGUF_MAX_DIMS) {
      invalid(`tensor '${t.name}' must have 1..${GGUF_MAX_DIMS} dims`);
    }
    let elements = 1;
    for (const d of dims as unknown[]) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1) invalid(`tensor '${t.name}' has dim ${String(d)} (positive integers only)`);
      elements *= d as number;
    }
    if (elements > Number.MAX_SAFE_INTEGER) invalid(`tensor '${t.name}' has more than 2^53 elements`);
    if (t.dims[0]! % type.blockSize !== 0) {
      invalid(`tensor '${t.name}' (${t.type}) has rows of ${t.dims[0]} elements, not a multiple of the block size ${type.blockSize}`);
    }
    const size = ggmlTensorBytes(type, elements);
    planned.push({ input: t, offset, size });
    offset = alignUp(offset + size, alignment);
  }
  return planned;
}

/** A growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = Buffer.allocUnsafe(1 << 16);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }

  u32(v: number): void {
    this.reserve(4);
    this.length = this.buf.writeUInt32LE(v, this.length);
  }

  u64(v: number | bigint): void {
    this.reserve(8);
    this.putU64(v, this.length);
    this.length += 8;
  }

  private putU64(v: number | bigint, at: number): void {
    if (typeof v === 'bigint') {
      this.buf.writeBigUInt64LE(v, at);
    } else {
      this.buf.writeUInt32LE(v % 2 ** 32, at);
      this.buf.writeUInt32LE(Math.floor(v / 2 ** 32), at + 4);
    }
  }

  string(s: string): void {
    // Encode first and fill in the length after: one pass over the string instead of two. A UTF-16
    // code unit never takes more than 3 UTF-8 bytes.
    this.reserve(8 + 3 * s.length);
    const n = this.buf.write(s, this.length + 8, 'utf8');
    this.putU64(n, this.length);
    this.length += 8 + n;
  }

  bytes(view: ArrayBufferView): void {
    this.reserve(view.byteLength);
    this.buf.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), this.length);
    this.length += view.byteLength;
  }

  scalar(type: NumericType | 'bool', v: number | bigint | boolean): void {
    if (type === 'bool') return this.bytes(Uint8Array.of(v ? 1 : 0));
    const { array } = NUMERIC[type];
    this.bytes(new (array as new (values: unknown[]) => ArrayBufferView)([v]));
  }

  /** The bytes written so far (a view, not a copy). */
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function encodeHeader(metadata: [string, GGUFValue][], tensors: PlannedTensor[]): Buffer {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) {
    w.string(key);
    w.u32(GGUF_VALUE_TYPE_IDS[value.type]);
    encodeValue(w, value);
  }
  for (const { input, offset } of tensors) {
    w.string(input.name);
    w.u32(input.dims.length);
    for (const d of input.dims) w.u64(d);
    w.u32(GGML_TYPES[input.type].id);
    w.u64(offset);
  }
  return w.result();
}

function encodeValue(w: ByteWriter, value: GGUFValue): void {
  if (value.type === 'string') return w.string(value.value);
  if (value.type !== 'array') return w.scalar(value.type, value.value);
  w.u32(GGUF_VALUE_TYPE_IDS[value.itemType]);
  w.u64(value.value.length);
  switch (value.itemType) {
    case 'string':
      for (const s of value.value) w.string(s);
      return;
    case 'bool':
      return w.bytes(Uint8Array.from(value.value, (b) => (b ? 1 : 0)));
    case 'array':
      for (const item of value.value) encodeValue(w, item);
      return;
    default:
      // The file is little-endian, like every host Node runs this package on.
      return w.bytes(value.value);
  }
}

/** Streams one tensor's data to `position`, checking that exactly its size arrives. */
async function writeTensorData(fh: FileHandle, t: PlannedTensor, position: number, path: string): Promise<void> {
  const { name } = t.input;
  const given = t.input.data!;
  const data: GGUFTensorData = typeof given === 'function' ? given() : given;
  let written = 0;
  const write = async (chunk: unknown): Promise<void> => {
    if (!ArrayBuffer.isView(chunk)) {
      throw new GGUFError('INVALID_INPUT', `data of tensor '${name}' contains a chunk that is not an ArrayBufferView`, path);
    }
    if (written + chunk.byteLength > t.size) {
      throw new GGUFError('INVALID_INPUT', `data of tensor '${name}' is larger than its ${t.size} bytes`, path);
    }
    await writeAll(fh, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), position + written, path);
    written += chunk.byteLength;
  };
  if (ArrayBuffer.isView(data)) {
    await write(data);
  } else if (data !== null && typeof data === 'object' && (Symbol.asyncIterator in data || Symbol.iterator in data)) {
    for await (const chunk of data as AsyncIterable<unknown>) await write(chunk);
  } else {
    throw new GGUFError('INVALID_INPUT', `data of tensor '${name}' is not bytes or an (async) iterable of bytes`, path);
  }
  if (written !== t.size) {
    throw new GGUFError('INVALID_INPUT', `data of tensor '${name}' has ${written} bytes, expected ${t.size}`, path);
  }
}

/** Writes all of `bytes` at `position`, in slices, retrying short writes. */
async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    let bytesWritten: number;
    try {
      ({ bytesWritten } = await fh.write(bytes, done, Math.min(MAX_WRITE, bytes.length - done), position + done));
    } catch (cause) {
      throw new GGUFError('IO', `write failed: ${(cause as Error).message}`, path, { cause });
    }
    done += bytesWritten;
  }
}

/** False for strings with lone surrogates, which UTF-8 cannot represent. */
const isWellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
    : (s) => !/\p{Surrogate}/u.test(s);
