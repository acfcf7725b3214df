/**
 * GGUF reader: parses the header (metadata and tensor table) of a v2/v3 file with bounded reads and
 * resolves every tensor to an absolute byte range. Tensor data is never read.
 *
 * Layout (little-endian): magic "GGUF", u32 version, u64 tensor count, u64 KV count, the KVs
 * (string key, u32 value type, value), the tensor infos (string name, u32 n_dims, u64 dims[n_dims],
 * u32 ggml type, u64 offset relative to the data section), padding to `general.alignment`, tensor data.
 * Strings are a u64 byte length followed by UTF-8 bytes; arrays are a u32 item type, a u64 count, items.
 */
import { openRegularFile, type FileLocation } from '../files.js';
import { GGUFError, ggufFileError, type GGUFErrorCode } from './errors.js';
import { describeUnsupportedTypeId, ggmlTensorBytes, ggmlTypeById } from './ggml-types.js';
import type { GGUFArrayValue, GGUFFile, GGUFScalarType, GGUFTensorInfo, GGUFValue } from './types.js';

/** Limits that keep a hostile file from exhausting memory. */
export interface ReadGGUFOptions {
  /**
   * Largest header (everything before the tensor data) accepted, in bytes; default 128 MiB. The header of
   * a model with a 257k-token vocabulary is about 6 MB.
   */
  maxHeaderBytes?: number;
  /**
   * Most array items the whole header may hold, all arrays together (nested ones included); default
   * 4,194,304. Strings and bools become one JS value each, so items cost far more memory and time than
   * their bytes in the file: a header holding 120 million bools took 36 s and 1.9 GB. The arrays of
   * a model's tokenizer (tokens, scores, types, merges) hold a few hundred thousand items each.
   */
  maxArrayItems?: number;
}

/** The magic "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
/** Alignment of the data section and of every tensor when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;

const DEFAULT_MAX_HEADER_BYTES = 128 * 2 ** 20;
const DEFAULT_MAX_ARRAY_ITEMS = 4 * 2 ** 20;
/** Arrays of arrays deeper than this are rejected (ggml itself writes none). */
const MAX_ARRAY_DEPTH = 16;
/**
 * Cap on arrays inside arrays: each costs a JS object per 12 file bytes, far more than the bytes themselves,
 * so the header limit alone would not bound memory.
 */
const MAX_NESTED_ARRAYS = 1 << 20;
/** Bytes fetched per read while parsing; larger reads happen when a single value needs more. */
const READ_CHUNK = 1 << 20;
/** magic + version + tensor count + KV count. */
const FIXED_HEADER_BYTES = 4 + 4 + 8 + 8;
/** Smallest KV: empty key (u64 length), value type, a one-byte value. */
const MIN_KV_BYTES = 8 + 4 + 1;
/** Smallest tensor info: empty name, n_dims, one dim, type, offset. */
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8;

/** Byte size of each numeric/bool value type and its typed-array constructor. */
const SCALARS = {
  u8: { id: 0, size: 1, array: Uint8Array },
  i8: { id: 1, size: 1, array: Int8Array },
  u16: { id: 2, size: 2, array: Uint16Array },
  i16: { id: 3, size: 2, array: Int16Array },
  u32: { id: 4, size: 4, array: Uint32Array },
  i32: { id: 5, size: 4, array: Int32Array },
  f32: { id: 6, size: 4, array: Float32Array },
  bool: { id: 7, size: 1, array: Uint8Array },
  u64: { id: 10, size: 8, array: BigUint64Array },
  i64: { id: 11, size: 8, array: BigInt64Array },
  f64: { id: 12, size: 8, array: Float64Array },
} as const satisfies Record<GGUFScalarType, { id: number; size: number; array: unknown }>;

const SCALAR_BY_ID = new Map<number, GGUFScalarType>(
  (Object.keys(SCALARS) as GGUFScalarType[]).map((name) => [SCALARS[name].id, name]),
);
const STRING_TYPE_ID = 8;
const ARRAY_TYPE_ID = 9;

/** Typed arrays are copied byte-for-byte from the file, which stores them little-endian. */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Parses the header of the GGUF file at `path` (versions 2 and 3) and resolves the tensor table against
 * the file. Rejects with a {@link GGUFError} naming what is wrong for any malformed or hostile input; reads
 * only the header, in bounded chunks. `path` may be a `file:` URL (the result's `path` is then the path it
 * names). Anything but a regular file (a directory, a FIFO, a device) is refused with NOT_A_FILE before a
 * byte is read.
 */
export async function readGGUF(path: FileLocation, options: ReadGGUFOptions = {}): Promise<GGUFFile> {
  const file = await openRegularFile(path, 'a GGUF file', ggufFileError);
  try {
    const source: GGUFByteSource = {
      size: file.size,
      read: async (buffer, offset, length, position) => (await file.handle.read(buffer, offset, length, position)).bytesRead,
    };
    return await parseGGUF(source, file.path, options);
  } finally {
    await file.handle.close().catch(() => undefined);
  }
}

/** Where header bytes come from: a file for {@link readGGUF}; memory in tests that parse many files. */
export interface GGUFByteSource {
  readonly size: number;
  /** Reads up to `length` bytes at `position` into `buffer` at `offset`; returns the count read. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
}

/** {@link readGGUF} over any byte source; `path` names the source in errors and in the result. */
export async function parseGGUF(source: GGUFByteSource, path: string, options: ReadGGUFOptions = {}): Promise<GGUFFile> {
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const maxArrayItems = options.maxArrayItems ?? DEFAULT_MAX_ARRAY_ITEMS;
  return new HeaderParser(new HeaderCursor(source, path, maxHeaderBytes), maxArrayItems).parse();
}

/**
 * A forward-only cursor over the file's header. Bytes are fetched in chunks into one buffer; `need(n)`
 * makes the next n bytes available (checking them against the file size and the header limit) and the
 * synchronous getters consume them, so hot loops only await when the buffer runs dry.
 */
class HeaderCursor {
  private buf = Buffer.alloc(0);
  private view = new DataView(this.buf.buffer);
  /** File position of buf[0]. */
  private bufStart = 0;
  /** Read position within buf. */
  private pos = 0;
  /** Number of valid bytes in buf. */
  private end = 0;

  constructor(
    private readonly source: GGUFByteSource,
    readonly path: string,
    private readonly maxHeaderBytes: number,
  ) {}

  get fileSize(): number {
    return this.source.size;
  }

  /** File position of the next byte to consume. */
  get position(): number {
    return this.bufStart + this.pos;
  }

  get remainingInFile(): number {
    return this.fileSize - this.position;
  }

  get buffered(): number {
    return this.end - this.pos;
  }

  fail(code: GGUFErrorCode, message: string): never {
    throw new GGUFError(code, message, this.path);
  }

  /**
   * Throws unless `n` more bytes exist in the file (`code` says what a shortfall means) and fit in the
   * header limit. Cheap enough to call before every allocation sized from file data.
   */
  checkAvailable(n: number, code: GGUFErrorCode, what: string): void {
    if (n > this.remainingInFile) {
      this.fail(code, `${what} needs ${n} bytes at offset ${this.position} but the file has ${this.remainingInFile} left`);
    }
    if (this.position + n > this.maxHeaderBytes) {
      this.fail('LIMIT_EXCEEDED', `${what} would make the header larger than the ${this.maxHeaderBytes}-byte limit`);
    }
  }

  /** Makes the next `n` bytes available in the buffer. */
  async need(n: number, code: GGUFErrorCode, what: string): Promise<void> {
    if (this.pos + n <= this.end) return;
    this.checkAvailable(n, code, what);
    await this.fill(n);
  }

  private async fill(n: number): Promise<void> {
    const unread = this.end - this.pos;
    const capacity = Math.max(READ_CHUNK, n);
    if (capacity > this.buf.length) {
      const bigger = Buffer.allocUnsafe(capacity);
      this.buf.copy(bigger, 0, this.pos, this.end);
      this.buf = bigger;
      this.view = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength);
    } else {
      this.buf.copyWithin(0, this.pos, this.end);
    }
    this.bufStart += this.pos;
    this.pos = 0;
    this.end = unread;
    // Read as much as fits (bounded by the file), and at least n bytes in total.
    const target = Math.min(this.buf.length, this.fileSize - this.bufStart);
    while (this.end < n || this.end < target) {
      let bytesRead: number;
      try {
        bytesRead = await this.source.read(this.buf, this.end, target - this.end, this.bufStart + this.end);
      } catch (cause) {
        throw new GGUFError('IO', `read failed: ${(cause as Error).message}`, this.path, { cause });
      }
      if (bytesRead === 0) {
        if (this.end >= n) break;
        this.fail('IO', `file shrank while reading (expected ${this.fileSize} bytes)`);
      }
      this.end += bytesRead;
    }
  }

  // Synchronous getters: the caller has made the bytes available with need().

  u8(): number {
    return this.buf[this.pos++]!;
  }

  u32(): number {
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A u64 as a number; exact below 2^53, and above that still larger than any real file offset or size. */
  u64AsNumber(): number {
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    return hi * 2 ** 32 + lo;
  }

  scalar(type: GGUFScalarType): GGUFValue {
    const { view, pos } = this;
    this.pos += SCALARS[type].size;
    switch (type) {
      case 'u8': return { type, value: view.getUint8(pos) };
      case 'i8': return { type, value: view.getInt8(pos) };
      case 'u16': return { type, value: view.getUint16(pos, true) };
      case 'i16': return { type, value: view.getInt16(pos, true) };
      case 'u32': return { type, value: view.getUint32(pos, true) };
      case 'i32': return { type, value: view.getInt32(pos, true) };
      case 'f32': return { type, value: view.getFloat32(pos, true) };
      case 'f64': return { type, value: view.getFloat64(pos, true) };
      case 'u64': return { type, value: view.getBigUint64(pos, true) };
      case 'i64': return { type, value: view.getBigInt64(pos, true) };
      case 'bool': return { type, value: this.bool(view.getUint8(pos), this.bufStart + pos) };
    }
  }

  /** Validates a bool byte found at file offset `at`. */
  bool(byte: number, at: number): boolean {
    if (byte > 1) this.fail('INVALID_VALUE', `bool byte at offset ${at} is ${byte}, not 0 or 1`);
    return byte === 1;
  }

  /** Decodes `length` available bytes as strict UTF-8. */
  utf8(length: number, what: string): string {
    const start = this.pos;
    this.pos += length;
    // Buffer decoding is about twice as fast as a fatal TextDecoder but replaces bad sequences with U+FFFD;
    // only strings containing U+FFFD need the strict check.
    const s = utf8Slice.call(this.buf, start, this.pos);
    if (s.includes('\uFFFD')) {
      try {
        strictUtf8.decode(this.buf.subarray(start, this.pos));
      } catch {
        this.fail('INVALID_UTF8', `${what} at offset ${this.bufStart + start} is not valid UTF-8`);
      }
    }
    return s;
  }

  /** Copies the next `dest.length` bytes of the file into `dest`, refilling as needed. */
  async copyTo(dest: Uint8Array, what: string): Promise<void> {
    let done = 0;
    while (done < dest.length) {
      if (this.buffered === 0) await this.need(Math.min(READ_CHUNK, dest.length - done), 'LENGTH_PAST_END', what);
      const n = Math.min(this.buffered, dest.length - done);
      dest.set(this.buf.subarray(this.pos, this.pos + n), done);
      this.pos += n;
      done += n;
    }
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Buffer's own UTF-8 slicer: what `buf.toString('utf8', start, end)` ends up calling, minus argument
 * handling that costs a third of the time for a 257k-token vocabulary. Undocumented, hence the fallback.
 */
const utf8Slice: (this: Buffer, start: number, end: number) => string =
  (Buffer.prototype as unknown as { utf8Slice?: (this: Buffer, start: number, end: number) => string }).utf8Slice ??
  function (this: Buffer, start: number, end: number): string {
    return this.toString('utf8', start, end);
  };

/** Parses the header through a cursor; one instance per file. */
class HeaderParser {
  private nestedArrays = 0;
  /** Items of all arrays so far, nested ones included. */
  private arrayItems = 0;

  constructor(
    private readonly c: HeaderCursor,
    private readonly maxArrayItems: number,
  ) {}

  async parse(): Promise<GGUFFile> {
    const c: HeaderCursor = this.c;
    await c.need(4, 'TRUNCATED', 'magic');
    const magic = c.u32();
    if (magic !== GGUF_MAGIC) c.fail('BAD_MAGIC', `not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')})`);
    await c.need(FIXED_HEADER_BYTES - 4, 'TRUNCATED', 'header');
    const version = c.u32();
    if (version !== 2 && version !== 3) {
      const swapped = ((version & 0xff) << 24 | (version & 0xff00) << 8 | (version >>> 8) & 0xff00 | version >>> 24) >>> 0;
      const hint = version === 1 ? ' (v1 files use 32-bit counts; re-convert the model)'
        : swapped === 2 || swapped === 3 ? ' (this looks like a big-endian file, which is not supported)' : '';
      c.fail('UNSUPPORTED_VERSION', `GGUF version ${version} is not supported${hint}`);
    }
    const tensorCount = c.u64AsNumber();
    const kvCount = c.u64AsNumber();
    // Every entry takes a minimum number of bytes, so counts are bounded by the file size before anything
    // is allocated or looped over.
    const minBytes = kvCount * MIN_KV_BYTES + tensorCount * MIN_TENSOR_INFO_BYTES;
    if (minBytes > c.remainingInFile) {
      c.fail('COUNT_TOO_LARGE', `${kvCount} KVs and ${tensorCount} tensors cannot fit in the ${c.remainingInFile} bytes after the header`);
    }

    const metadata = new Map<string, GGUFValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = await this.string('KV key');
      if (metadata.has(key)) c.fail('DUPLICATE_KEY', `metadata key '${key}' appears twice`);
      await c.need(4, 'TRUNCATED', `type of '${key}'`);
      metadata.set(key, await this.value(c.u32(), key, 0));
    }
    const alignment = this.alignment(metadata);

    const tensors: GGUFTensorInfo[] = [];
    const tensorsByName = new Map<string, GGUFTensorInfo>();
    const relativeOffsets: number[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const { info, relativeOffset } = await this.tensorInfo();
      if (tensorsByName.has(info.name)) c.fail('DUPLICATE_TENSOR', `tensor '${info.name}' appears twice`);
      tensors.push(info);
      tensorsByName.set(info.name, info);
      relativeOffsets.push(relativeOffset);
    }

    const dataOffset = alignUp(c.position, alignment);
    tensors.forEach((t, i) => this.placeTensor(t, relativeOffsets[i]!, dataOffset, alignment));
    this.checkNoOverlap(tensors);
    return { path: c.path, version, alignment, dataOffset, fileSize: c.fileSize, metadata, tensors, tensorsByName };
  }

  private async string(what: string): Promise<string> {
    const c: HeaderCursor = this.c;
    await c.need(8, 'TRUNCATED', `length of ${what}`);
    const length = c.u64AsNumber();
    await c.need(length, 'LENGTH_PAST_END', what);
    return c.utf8(length, what);
  }

  private async value(typeId: number, key: string, depth: number): Promise<GGUFValue> {
    const c: HeaderCursor = this.c;
    const scalar = SCALAR_BY_ID.get(typeId);
    if (scalar) {
      await c.need(SCALARS[scalar].size, 'TRUNCATED', `value of '${key}'`);
      return c.scalar(scalar);
    }
    if (typeId === STRING_TYPE_ID) return { type: 'string', value: await this.string(`value of '${key}'`) };
    if (typeId === ARRAY_TYPE_ID) return this.array(key, depth);
    return c.fail('UNKNOWN_VALUE_TYPE', `value type ${typeId} of '${key}' is unknown`);
  }

  private async array(key: string, depth: number): Promise<GGUFArrayValue> {
    const c: HeaderCursor = this.c;
    if (depth >= MAX_ARRAY_DEPTH) c.fail('LIMIT_EXCEEDED', `arrays in '${key}' are nested deeper than ${MAX_ARRAY_DEPTH}`);
    await c.need(4 + 8, 'TRUNCATED', `array header of '${key}'`);
    const itemTypeId = c.u32();
    const count = c.u64AsNumber();
    const what = `array '${key}' of ${count} items`;
    const scalar = SCALAR_BY_ID.get(itemTypeId);
    // Each item takes at least one byte, so a count the file cannot hold is LENGTH_PAST_END, not a limit.
    c.checkAvailable(count, 'LENGTH_PAST_END', what);
    this.arrayItems += count;
    if (this.arrayItems > this.maxArrayItems) {
      c.fail('LIMIT_EXCEEDED', `${what} takes the header past ${this.maxArrayItems} array items in all (the maxArrayItems limit)`);
    }

    if (scalar) {
      const { size, array } = SCALARS[scalar];
      c.checkAvailable(count * size, 'LENGTH_PAST_END', what);
      const items = new array(count);
      const start = c.position;
      await c.copyTo(new Uint8Array(items.buffer), what);
      if (!LITTLE_ENDIAN_HOST) byteSwapInPlace(items, size);
      if (scalar !== 'bool') return { type: 'array', itemType: scalar, value: items } as GGUFArrayValue;
      const bools = new Array<boolean>(count);
      for (let i = 0; i < count; i++) bools[i] = c.bool(items[i] as number, start + i);
      return { type: 'array', itemType: 'bool', value: bools };
    }

    if (itemTypeId === STRING_TYPE_ID) {
      c.checkAvailable(count * 8, 'LENGTH_PAST_END', what);
      const items = new Array<string>(count);
      const itemWhat = `string in '${key}'`;
      for (let i = 0; i < count; i++) {
        // Awaiting only when the buffer runs dry keeps a 257k-entry vocabulary fast.
        if (c.buffered < 8) await c.need(8, 'TRUNCATED', `length of ${itemWhat}`);
        const length = c.u64AsNumber();
        if (c.buffered < length) await c.need(length, 'LENGTH_PAST_END', itemWhat);
        items[i] = c.utf8(length, itemWhat);
      }
      return { type: 'array', itemType: 'string', value: items };
    }

    if (itemTypeId === ARRAY_TYPE_ID) {
      c.checkAvailable(count * 12, 'LENGTH_PAST_END', what);
      this.nestedArrays += count;
      if (this.nestedArrays > MAX_NESTED_ARRAYS) c.fail('LIMIT_EXCEEDED', `more than ${MAX_NESTED_ARRAYS} arrays nested in arrays`);
      const items: GGUFArrayValue[] = [];
      for (let i = 0; i < count; i++) items.push(await this.array(key, depth + 1));
      return { type: 'array', itemType: 'array', value: items };
    }

    return c.fail('UNKNOWN_VALUE_TYPE', `item type ${itemTypeId} of array '${key}' is unknown`);
  }

  private alignment(metadata: Map<string, GGUFValue>): number {
    const value = metadata.get('general.alignment');
    if (value === undefined) return GGUF_DEFAULT_ALIGNMENT;
    if (value.type !== 'u32') this.c.fail('BAD_ALIGNMENT', `general.alignment must be a u32, not ${value.type}`);
    const a = value.value;
    if (a === 0 || (a & (a - 1)) !== 0) this.c.fail('BAD_ALIGNMENT', `general.alignment ${a} is not a power of two`);
    return a;
  }

  private async tensorInfo(): Promise<{ info: GGUFTensorInfo; relativeOffset: number }> {
    const c: HeaderCursor = this.c;
    const name = await this.string('tensor name');
    await c.need(4, 'TRUNCATED', `n_dims of tensor '${name}'`);
    const nDims = c.u32();
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) c.fail('BAD_DIMS', `tensor '${name}' has ${nDims} dims (1..${GGUF_MAX_DIMS} allowed)`);
    await c.need(8 * nDims + 4 + 8, 'TRUNCATED', `tensor info of '${name}'`);
    const dims: number[] = [];
    let elements = 1;
    for (let d = 0; d < nDims; d++) {
      const dim = c.u64AsNumber();
      elements *= dim;
      // ggml dims are int64: 0 and values ≥ 2^63 (negative) are invalid; element counts past 2^53 would
      // lose precision here and no real tensor has them.
      if (dim === 0) c.fail('BAD_DIMS', `tensor '${name}' has a dim of 0`);
      if (dim >= 2 ** 63) c.fail('BAD_DIMS', `tensor '${name}' has a negative dim (dims are int64)`);
      if (elements > Number.MAX_SAFE_INTEGER) c.fail('BAD_DIMS', `tensor '${name}' has more than 2^53 elements (dim ${d} is ${dim})`);
      dims.push(dim);
    }
    const typeId = c.u32();
    const relativeOffset = c.u64AsNumber();
    const ggmlType = ggmlTypeById(typeId);
    if (!ggmlType) c.fail('UNKNOWN_TENSOR_TYPE', `tensor '${name}': ${describeUnsupportedTypeId(typeId)}`);
    if (dims[0]! % ggmlType.blockSize !== 0) {
      c.fail('BAD_DIMS', `tensor '${name}' (${ggmlType.name}) has rows of ${dims[0]} elements, not a multiple of the block size ${ggmlType.blockSize}`);
    }
    const size = ggmlTensorBytes(ggmlType, elements);
    // The absolute offset is known once the header's end is (see placeTensor).
    return { info: { name, type: ggmlType.name, typeId, dims, elements, offset: 0, size }, relativeOffset };
  }

  /** Turns a tensor's relative offset into an absolute one, checking alignment and bounds. */
  private placeTensor(t: GGUFTensorInfo, relativeOffset: number, dataOffset: number, alignment: number): void {
    const c: HeaderCursor = this.c;
    if (relativeOffset % alignment !== 0) {
      c.fail('MISALIGNED_OFFSET', `tensor '${t.name}' offset ${relativeOffset} is not a multiple of the alignment ${alignment}`);
    }
    t.offset = dataOffset + relativeOffset;
    if (t.offset + t.size > c.fileSize) {
      c.fail('TENSOR_OUT_OF_BOUNDS', `tensor '${t.name}' data [${t.offset}, ${t.offset + t.size}) ends past the end of the file (${c.fileSize} bytes)`);
    }
  }

  private checkNoOverlap(tensors: GGUFTensorInfo[]): void {
    const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const t = sorted[i]!;
      if (t.offset < prev.offset + prev.size) {
        this.c.fail('TENSOR_OVERLAP', `tensors '${prev.name}' and '${t.name}' share bytes at offset ${t.offset}`);
      }
    }
  }
}

/** Rounds `n` up to a multiple of `alignment`. */
export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Converts little-endian file order to host order on a big-endian host. */
function byteSwapInPlace(items: ArrayBufferView, size: number): void {
  if (size === 1) return;
  const bytes = new Uint8Array(items.buffer, items.byteOffset, items.byteLength);
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}
