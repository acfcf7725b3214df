/**
 * A bounded reader for NumPy `.npz` files (what `np.savez` / `np.savez_compressed` write): a zip
 * archive of `.npy` files. Only what those writers produce is supported: stored or deflated entries,
 * zip64 fields (numpy forces them), float arrays in C order. Every offset and size is checked against
 * the file before use, and entries are only inflated up to their declared size, so a damaged or hostile
 * file gets an {@link NpzError} instead of a crash or an unbounded allocation.
 *
 * Zip layout used (APPNOTE.TXT): the end-of-central-directory record (EOCD) at the end of the file
 * points to the central directory, whose entries give each member's method, CRC-32, sizes and the
 * offset of its local header; the data follows the local header's name and extra field.
 */
import { crc32, inflateRawSync } from 'node:zlib';

import { f16BitsToF32 } from '../convert/dtype.js';
import { PaliGemmaError } from '../errors.js';
import { localPath, readRegularFile, type FileErrorFactory, type FileLocation } from '../files.js';

/** Why an .npz file was rejected. */
export type NpzErrorCode =
  /** The file could not be read. */
  | 'IO'
  /** The path is a directory, a FIFO, a device or a socket, or a URL that is not a `file:` URL. */
  | 'NOT_A_FILE'
  /** The bytes are not a zip archive. */
  | 'NOT_ZIP'
  /** The archive is damaged or truncated: bad signature, offsets past the end, CRC or size mismatch. */
  | 'CORRUPT'
  /** Valid but not supported: encryption, a compression method other than stored/deflate, spanning, a dtype. */
  | 'UNSUPPORTED'
  /** A member is not a valid .npy file (bad magic or header, data of the wrong length). */
  | 'BAD_NPY'
  /** The file, an entry, or the number of entries exceeds the reader's limits. */
  | 'LIMIT_EXCEEDED';

/** A typed error for anything wrong with an .npz file. */
export class NpzError extends PaliGemmaError<NpzErrorCode> {
  override name = 'NpzError';
  constructor(
    code: NpzErrorCode,
    message: string,
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(code, path ? `${path}: ${message}` : message, options);
  }
}

/** A float array from an .npy member, converted to float32. */
export interface NpyArray {
  /** NumPy shape (C order: the last axis is contiguous). */
  shape: number[];
  data: Float32Array;
}

/** Options of {@link readNpz} and {@link parseNpz}. */
export interface NpzOptions {
  /** Which arrays to decode, by name without `.npy` (default: all). Others are not inflated or parsed. */
  select?: (name: string) => boolean;
  /** Largest file, and largest total of decoded bytes, accepted (default 1 GiB). */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 2 ** 30;
const MAX_ENTRIES = 1 << 16;

const EOCD_SIG = 0x06054b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const CENTRAL_SIZE = 46;
const LOCAL_SIG = 0x04034b50;
const LOCAL_SIZE = 30;
const ZIP64_EXTRA_ID = 0x0001;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;

/** Reads the arrays of the .npz file at `path` (see {@link parseNpz}). */
export async function readNpz(path: FileLocation, options: NpzOptions = {}): Promise<Map<string, NpyArray>> {
  const fail: FileErrorFactory = (problem, message, where, cause) =>
    new NpzError(problem === 'TOO_LARGE' ? 'LIMIT_EXCEEDED' : problem, message, where, { cause });
  const file = localPath(path, fail);
  const bytes = await readRegularFile(file, 'an .npz file', fail, options.maxBytes ?? DEFAULT_MAX_BYTES);
  return parseNpz(bytes, file, options);
}

/** Throws an {@link NpzError} naming the source. */
type Fail = (code: NpzErrorCode, message: string, cause?: unknown) => never;

/** One member as the central directory describes it. */
interface Entry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/**
 * The arrays of an .npz held in memory, by name (the member name without `.npy`). `source` names the
 * bytes in errors. Throws {@link NpzError} for anything malformed.
 */
export function parseNpz(bytes: Uint8Array, source: string, options: NpzOptions = {}): Map<string, NpyArray> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const fail: Fail = (code, message, cause) => {
    throw new NpzError(code, message, source, { cause });
  };
  if (bytes.length > maxBytes) fail('LIMIT_EXCEEDED', `the file has ${bytes.length} bytes, more than the limit of ${maxBytes}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries = centralDirectory(bytes, view, fail);
  const arrays = new Map<string, NpyArray>();
  let decoded = 0;
  for (const e of entries) {
    if (!e.name.endsWith('.npy')) continue;
    const name = e.name.slice(0, -4);
    if (options.select && !options.select(name)) continue;
    if (arrays.has(name)) fail('CORRUPT', `the archive holds ${e.name} twice`);
    decoded += e.size;
    if (decoded > maxBytes) fail('LIMIT_EXCEEDED', `the selected arrays hold more than ${maxBytes} bytes`);
    arrays.set(name, parseNpy(memberData(bytes, view, e, fail), (m) => fail('BAD_NPY', `${e.name}: ${m}`), fail));
  }
  return arrays;
}

/** Finds the EOCD (and zip64 EOCD) and reads every central directory entry. */
function centralDirectory(bytes: Uint8Array, view: DataView, fail: Fail): Entry[] {
  const isZip = bytes.length >= 4 && view.getUint32(0, true) === LOCAL_SIG;
  // The EOCD is the last record; only a comment (≤ 65535 bytes) may follow it.
  let eocd = -1;
  for (let p = bytes.length - EOCD_SIZE; p >= Math.max(0, bytes.length - EOCD_SIZE - U16_MAX); p--) {
    if (view.getUint32(p, true) === EOCD_SIG && p + EOCD_SIZE + view.getUint16(p + 20, true) === bytes.length) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) {
    if (isZip) fail('CORRUPT', 'no end-of-central-directory record: the file is truncated');
    fail('NOT_ZIP', 'not an .npz file (a zip archive): no zip signature');
  }
  if (view.getUint16(eocd + 4, true) !== 0 || view.getUint16(eocd + 6, true) !== 0)
    fail('UNSUPPORTED', 'multi-part (spanned) zip archives are not supported');
  let count = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  if (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX) {
    const loc = eocd - ZIP64_LOCATOR_SIZE;
    if (loc < 0 || view.getUint32(loc, true) !== ZIP64_LOCATOR_SIG) fail('CORRUPT', 'the zip64 end-of-central-directory locator is missing');
    const z = safeU64(view, loc + 8, fail);
    if (z + 56 > loc || view.getUint32(z, true) !== ZIP64_EOCD_SIG) fail('CORRUPT', 'the zip64 end-of-central-directory record is missing');
    count = safeU64(view, z + 32, fail);
    cdSize = safeU64(view, z + 40, fail);
    cdOffset = safeU64(view, z + 48, fail);
  }
  if (count > MAX_ENTRIES) fail('LIMIT_EXCEEDED', `the archive lists ${count} entries, more than ${MAX_ENTRIES}`);
  if (cdOffset + cdSize > eocd) fail('CORRUPT', 'the central directory runs past its end record');

  const entries: Entry[] = [];
  let p = cdOffset;
  const end = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (p + CENTRAL_SIZE > end || view.getUint32(p, true) !== CENTRAL_SIG) fail('CORRUPT', `central directory entry ${i} is damaged`);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    const next = p + CENTRAL_SIZE + nameLen + extraLen + commentLen;
    if (next > end) fail('CORRUPT', `central directory entry ${i} runs past the directory`);
    const e: Entry = {
      name: new TextDecoder().decode(bytes.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLen)),
      flags: view.getUint16(p + 8, true),
      method: view.getUint16(p + 10, true),
      crc: view.getUint32(p + 16, true),
      compressedSize: view.getUint32(p + 20, true),
      size: view.getUint32(p + 24, true),
      localOffset: view.getUint32(p + 42, true),
    };
    applyZip64Extra(e, view, p + CENTRAL_SIZE + nameLen, extraLen, fail);
    entries.push(e);
    p = next;
  }
  return entries;
}

/** Fields stored as 0xFFFFFFFF take their value from the zip64 extra field, in this order. */
function applyZip64Extra(e: Entry, view: DataView, start: number, length: number, fail: Fail): void {
  const wanted = (['size', 'compressedSize', 'localOffset'] as const).filter((k) => e[k] === U32_MAX);
  if (wanted.length === 0) return;
  for (let p = start; p + 4 <= start + length; ) {
    const id = view.getUint16(p, true);
    const size = view.getUint16(p + 2, true);
    if (p + 4 + size > start + length) break;
    if (id === ZIP64_EXTRA_ID) {
      if (size < 8 * wanted.length) break;
      wanted.forEach((k, i) => (e[k] = safeU64(view, p + 4 + 8 * i, fail)));
      return;
    }
    p += 4 + size;
  }
  fail('CORRUPT', `${e.name}: the zip64 sizes are missing`);
}

/** A u64 that must fit in a JS number (anything larger cannot be an offset in a file we read). */
function safeU64(view: DataView, p: number, fail: Fail): number {
  if (p + 8 > view.byteLength) fail('CORRUPT', 'a zip64 field runs past the end of the file');
  const v = view.getBigUint64(p, true);
  if (v > BigInt(view.byteLength)) fail('CORRUPT', `a zip64 size or offset (${v}) is larger than the file`);
  return Number(v);
}

/** The uncompressed bytes of one member, checked against its size and CRC-32. */
function memberData(bytes: Uint8Array, view: DataView, e: Entry, fail: Fail): Uint8Array {
  if (e.flags & 1) fail('UNSUPPORTED', `${e.name} is encrypted`);
  const p = e.localOffset;
  if (p + LOCAL_SIZE > bytes.length || view.getUint32(p, true) !== LOCAL_SIG) fail('CORRUPT', `${e.name}: bad local header`);
  const start = p + LOCAL_SIZE + view.getUint16(p + 26, true) + view.getUint16(p + 28, true);
  const end = start + e.compressedSize;
  if (end > bytes.length) fail('CORRUPT', `${e.name}: the data runs past the end of the file (truncated?)`);
  const raw = bytes.subarray(start, end);
  let data: Uint8Array;
  if (e.method === METHOD_STORED) {
    if (e.compressedSize !== e.size) fail('CORRUPT', `${e.name}: a stored entry with different compressed and plain sizes`);
    data = raw;
  } else if (e.method === METHOD_DEFLATE) {
    try {
      // maxOutputLength bounds the allocation by the declared size, whatever the stream holds.
      data = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
    } catch (cause) {
      fail('CORRUPT', `${e.name}: cannot inflate: ${(cause as Error).message}`, cause);
    }
  } else {
    fail('UNSUPPORTED', `${e.name}: compression method ${e.method} (only stored and deflate are supported)`);
  }
  if (data!.length !== e.size) fail('CORRUPT', `${e.name}: ${data!.length} bytes after decompression, ${e.size} declared`);
  if (crc32(data!) >>> 0 !== e.crc) fail('CORRUPT', `${e.name}: CRC-32 mismatch`);
  return data!;
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** Float dtypes accepted (little-endian), with their byte size and how to read one element. */
const DTYPES: Record<string, { size: number; read: (v: DataView, p: number) => number }> = {
  '<f4': { size: 4, read: (v, p) => v.getFloat32(p, true) },
  '<f8': { size: 8, read: (v, p) => v.getFloat64(p, true) },
  '<f2': { size: 2, read: (v, p) => f16BitsToF32(v.getUint16(p, true)) },
};

/**
 * An .npy file: magic, version, header length (u16 in v1, u32 in v2/v3), a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (128, 512), }`, then the raw data.
 */
function parseNpy(b: Uint8Array, bad: (m: string) => never, fail: Fail): NpyArray {
  if (b.length < 10 || NPY_MAGIC.some((m, i) => b[i] !== m)) bad('not an .npy file (bad magic)');
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const major = b[6]!;
  if (major < 1 || major > 3) bad(`unsupported .npy version ${major}`);
  const headerStart = major === 1 ? 10 : 12;
  if (b.length < headerStart) bad('truncated header');
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = headerStart + headerLen;
  if (dataStart > b.length) bad('the header runs past the end of the member');
  const header = new TextDecoder().decode(b.subarray(headerStart, dataStart)).trim();
  if (!header.startsWith('{') || !header.endsWith('}')) bad(`the header is not a dict: ${JSON.stringify(header.slice(0, 80))}`);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    bad(`the header lacks descr, fortran_order or shape: ${JSON.stringify(header.slice(0, 120))}`);
  const shape = shapeText!.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
    if (!/^\d{1,9}$/.test(s)) bad(`bad shape (${shapeText})`);
    return Number(s);
  });
  const dtype = DTYPES[descr!];
  if (!dtype) fail('UNSUPPORTED', `dtype ${descr} is not supported (only little-endian float: <f2, <f4, <f8)`);
  if (fortran === 'True' && shape.filter((d) => d > 1).length > 1) fail('UNSUPPORTED', 'Fortran-order arrays are not supported');
  const count = shape.reduce((a, d) => a * d, 1);
  if (count * dtype!.size !== b.length - dataStart)
    bad(`shape (${shape.join(', ')}) of ${descr} needs ${count * dtype!.size} bytes, the member has ${b.length - dataStart}`);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = dtype!.read(view, dataStart + i * dtype!.size);
  return { shape, data };
}
