/**
 * Hostile and corrupt GGUF files: every case must end in a GGUFError with the right code (or, for random
 * mutations, a valid result) — never another exception, a hang or an unbounded allocation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GGUFError, readGGUF, type GGUFErrorCode, type GGUFFile, type ReadGGUFOptions } from '../lib/gguf/index.js';
import { parseGGUF, type GGUFByteSource } from '../lib/gguf/reader.js';
import { GGUFBytes } from './helpers/gguf-fixtures.js';

let dir: string;
let fileNo = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'paligemma-gguf-errors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `bytes` to a fresh temp file and reads it with readGGUF. */
async function readBytesAsGGUF(bytes: Uint8Array, options?: ReadGGUFOptions): Promise<GGUFFile> {
  const path = join(dir, `c${fileNo++}.gguf`);
  await writeFile(path, bytes);
  try {
    return await readGGUF(path, options);
  } finally {
    await rm(path, { force: true });
  }
}

/**
 * Parses `bytes` with the same parser as readGGUF but from memory: thousands of cases stay fast. The
 * source hands out short reads of varying length, as a file system may, to exercise the refill loop.
 */
function parseBytes(bytes: Uint8Array, options?: ReadGGUFOptions): Promise<GGUFFile> {
  const source: GGUFByteSource = {
    size: bytes.length,
    read: async (buffer, offset, length, position) => {
      const n = Math.min(length, bytes.length - position, 1 + ((position * 7919) % 61));
      buffer.set(bytes.subarray(position, position + n), offset);
      return Math.max(0, n);
    },
  };
  return parseGGUF(source, 'memory.gguf', options);
}

/**
 * Resolves to the error's code, or to 'OK' when the file was accepted (checking what that guarantees);
 * any exception other than a GGUFError fails the test.
 */
async function outcome(bytes: Uint8Array, options: ReadGGUFOptions & { viaFile?: boolean } = {}): Promise<GGUFErrorCode | 'OK'> {
  try {
    const g = await (options.viaFile ? readBytesAsGGUF(bytes, options) : parseBytes(bytes, options));
    checkInvariants(g, bytes.length);
    return 'OK';
  } catch (e) {
    if (e instanceof GGUFError) return e.code;
    throw e;
  }
}

/** What an accepted file guarantees: every tensor inside the file, aligned, and no two overlapping. */
function checkInvariants(g: GGUFFile, fileSize: number): void {
  expect(g.fileSize).toBe(fileSize);
  expect(g.dataOffset % g.alignment).toBe(0);
  if (g.tensors.length === 0) return; // the data section may then be absent
  const sorted = [...g.tensors].sort((a, b) => a.offset - b.offset);
  let end = g.dataOffset;
  for (const t of sorted) {
    expect(t.offset).toBeGreaterThanOrEqual(end);
    expect((t.offset - g.dataOffset) % g.alignment).toBe(0);
    expect(t.size).toBeGreaterThan(0);
    end = t.offset + t.size;
  }
  expect(end).toBeLessThanOrEqual(fileSize);
}

const te = new TextEncoder();

/**
 * A small valid v3 file exercising every header construct: scalar, string, string array, numeric array,
 * nested array, bool, and three tensors of different types. `boundaries` lists the offset where each
 * header field starts.
 */
function smallValidFile(): { bytes: Uint8Array; headerEnd: number; dataOffset: number } {
  const b = new GGUFBytes().header(3, 3, 7);
  b.str('general.architecture').u32(8).str('gemma');
  b.str('test.u8').u32(0).u8(200);
  b.str('tokenizer.ggml.tokens').u32(9).u32(8).u64(4).str('<pad>').str('a').str('▁b').str('日本');
  b.str('tokenizer.ggml.scores').u32(9).u32(6).u64(4).f32(0).f32(-1).f32(-2).f32(-3);
  b.str('test.nested').u32(9).u32(9).u64(2);
  b.u32(5).u64(2).u32(1).u32(2); // [1, 2] as i32
  b.u32(8).u64(0); // []
  b.str('test.bool').u32(7).u8(1);
  b.str('test.u64').u32(10).u64(2n ** 63n);
  b.tensorInfo('a', [4, 2], 0, 0); // F32, 32 bytes
  b.tensorInfo('b', [32], 8, 32); // Q8_0, 34 bytes
  b.tensorInfo('c', [3], 1, 96); // F16, 6 bytes
  const headerEnd = b.length;
  b.pad(32);
  const dataOffset = b.length;
  for (let i = 0; i < 102; i++) b.u8(i * 7);
  return { bytes: b.build(), headerEnd, dataOffset };
}

/** The fixed header followed by `rest`, with counts given. */
function fileWith(tensorCount: number | bigint, kvCount: number | bigint, build: (b: GGUFBytes) => void, version = 3): Uint8Array {
  const b = new GGUFBytes().header(version, tensorCount, kvCount);
  build(b);
  return b.build();
}

describe('the corrupt-file corpus', () => {
  const valid = smallValidFile();

  it('accepts the untouched small file', async () => {
    const g = await readBytesAsGGUF(valid.bytes);
    expect(g.dataOffset).toBe(valid.dataOffset);
    expect(g.tensors.map((t) => [t.name, t.offset - g.dataOffset, t.size])).toEqual([['a', 0, 32], ['b', 32, 34], ['c', 96, 6]]);
    expect(g.metadata.get('tokenizer.ggml.tokens')).toEqual({ type: 'array', itemType: 'string', value: ['<pad>', 'a', '▁b', '日本'] });
  });

  it('rejects a truncation at every byte offset with a truncation code', async () => {
    const codes = new Map<string, number>();
    for (let cut = 0; cut < valid.bytes.length; cut++) {
      const code = await outcome(valid.bytes.subarray(0, cut));
      codes.set(code, (codes.get(code) ?? 0) + 1);
      if (cut < 24) expect(code, `cut at ${cut}`).toBe('TRUNCATED');
      else if (cut >= valid.headerEnd) expect(code, `cut at ${cut}`).toBe('TENSOR_OUT_OF_BOUNDS');
      else expect(['TRUNCATED', 'LENGTH_PAST_END', 'COUNT_TOO_LARGE'], `cut at ${cut}`).toContain(code);
    }
    // Each kind of shortfall shows up somewhere in the file.
    expect([...codes.keys()].sort()).toEqual(['COUNT_TOO_LARGE', 'LENGTH_PAST_END', 'TENSOR_OUT_OF_BOUNDS', 'TRUNCATED']);
  });

  it('survives every single-bit flip of the header', async () => {
    const codes = new Map<string, number>();
    for (let bit = 0; bit < valid.headerEnd * 8; bit++) {
      const bytes = valid.bytes.slice();
      bytes[bit >> 3]! ^= 1 << (bit & 7);
      const code = await outcome(bytes);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    console.log(`bit flips: ${valid.headerEnd * 8} cases`, Object.fromEntries(codes));
    expect(codes.get('BAD_MAGIC')).toBe(32);
    // Flipping bit 0 of version 3 gives version 2, which is valid; the other 31 flips are not.
    expect(codes.get('UNSUPPORTED_VERSION')).toBe(31);
  });

  const cases: [string, Uint8Array, GGUFErrorCode, string?][] = [
    ['an empty file', new Uint8Array(0), 'TRUNCATED'],
    ['a file of 3 bytes', te.encode('GGU'), 'TRUNCATED'],
    ['a wrong magic', te.encode('GGML\x03\0\0\0'), 'BAD_MAGIC', 'magic 0x4c4d4747'],
    ['a safetensors file', new GGUFBytes().u64(2).raw(te.encode('{}')).build(), 'BAD_MAGIC'],
    ['version 1', fileWith(0, 0, () => {}, 1), 'UNSUPPORTED_VERSION', 'v1 files use 32-bit counts'],
    ['version 4', fileWith(0, 0, () => {}, 4), 'UNSUPPORTED_VERSION'],
    ['a big-endian file', fileWith(0, 0, () => {}, 0x03000000), 'UNSUPPORTED_VERSION', 'big-endian'],
    ['a KV count of 2^60', fileWith(0, 2n ** 60n, () => {}), 'COUNT_TOO_LARGE'],
    ['a tensor count of 2^64-1', fileWith(2n ** 64n - 1n, 0, () => {}), 'COUNT_TOO_LARGE'],
    ['a KV count one too many', fileWith(0, 2, (b) => b.str('k').u32(0).u8(1)), 'COUNT_TOO_LARGE'],
    ['a key length of 2^63', fileWith(0, 1, (b) => b.u64(2n ** 63n).u32(0).u8(0)), 'LENGTH_PAST_END'],
    ['a key length of 2^64-1', fileWith(0, 1, (b) => b.u64(2n ** 64n - 1n).u32(0).u8(0)), 'LENGTH_PAST_END'],
    ['a string value running past the end', fileWith(0, 1, (b) => b.str('k').u32(8).u64(100).raw(te.encode('short'))), 'LENGTH_PAST_END'],
    ['a string array of 2^40 items', fileWith(0, 1, (b) => b.str('k').u32(9).u32(8).u64(2n ** 40n)), 'LENGTH_PAST_END'],
    ['a string item running past the end', fileWith(0, 1, (b) => b.str('k').u32(9).u32(8).u64(2).str('a').u64(1000).u32(0)), 'LENGTH_PAST_END'],
    ['an f32 array of 2^62 items', fileWith(0, 1, (b) => b.str('k').u32(9).u32(6).u64(2n ** 62n)), 'LENGTH_PAST_END'],
    ['an f32 array one item short', fileWith(0, 1, (b) => b.str('k').u32(9).u32(6).u64(3).f32(1).f32(2)), 'LENGTH_PAST_END'],
    ['nested arrays of 2^50 items', fileWith(0, 1, (b) => b.str('k').u32(9).u32(9).u64(2n ** 50n)), 'LENGTH_PAST_END'],
    ['value type 13', fileWith(0, 1, (b) => b.str('k').u32(13).u64(0)), 'UNKNOWN_VALUE_TYPE', "value type 13 of 'k'"],
    ['value type 2^32-1', fileWith(0, 1, (b) => b.str('k').u32(0xffffffff).u64(0)), 'UNKNOWN_VALUE_TYPE'],
    ['array item type 13', fileWith(0, 1, (b) => b.str('k').u32(9).u32(13).u64(0)), 'UNKNOWN_VALUE_TYPE'],
    ['a bool byte of 2', fileWith(0, 1, (b) => b.str('k').u32(7).u8(2)), 'INVALID_VALUE'],
    ['a bool array byte of 255', fileWith(0, 1, (b) => b.str('k').u32(9).u32(7).u64(2).u8(1).u8(255)), 'INVALID_VALUE'],
    ['a duplicate key', fileWith(0, 2, (b) => b.str('k').u32(0).u8(1).str('k').u32(0).u8(2)), 'DUPLICATE_KEY', "'k' appears twice"],
    ['general.alignment 0', fileWith(0, 1, (b) => b.str('general.alignment').u32(4).u32(0)), 'BAD_ALIGNMENT'],
    ['general.alignment 48', fileWith(0, 1, (b) => b.str('general.alignment').u32(4).u32(48)), 'BAD_ALIGNMENT'],
    ['general.alignment as a string', fileWith(0, 1, (b) => b.str('general.alignment').u32(8).str('32')), 'BAD_ALIGNMENT'],
    ['0 dims', fileWith(1, 0, (b) => b.str('t').u32(0).u32(0).u64(0).pad(32).u64(0)), 'BAD_DIMS'],
    ['5 dims', fileWith(1, 0, (b) => b.tensorInfo('t', [1, 1, 1, 1, 1], 0, 0).pad(32).u32(0)), 'BAD_DIMS', '5 dims'],
    ['n_dims 2^32-1', fileWith(1, 0, (b) => b.str('t').u32(0xffffffff).raw(new Uint8Array(40))), 'BAD_DIMS'],
    ['a dim of 0', fileWith(1, 0, (b) => b.tensorInfo('t', [4, 0], 0, 0).pad(32).u64(0)), 'BAD_DIMS', 'dim of 0'],
    ['a negative (int64) dim', fileWith(1, 0, (b) => b.tensorInfo('t', [-4n], 0, 0).pad(32).u64(0)), 'BAD_DIMS', 'negative dim'],
    ['2^54 elements', fileWith(1, 0, (b) => b.tensorInfo('t', [2 ** 27, 2 ** 27], 0, 0).pad(32).u64(0)), 'BAD_DIMS', '2^53'],
    ['overflowing dims', fileWith(1, 0, (b) => b.tensorInfo('t', [2n ** 40n, 2n ** 40n, 2n ** 40n, 2n ** 40n], 0, 0).pad(32)), 'BAD_DIMS'],
    ['a row that is not whole blocks', fileWith(1, 0, (b) => b.tensorInfo('t', [33], 8, 0).pad(32).raw(new Uint8Array(68))), 'BAD_DIMS', 'block size 32'],
    ['tensor type 99', fileWith(1, 0, (b) => b.tensorInfo('t', [1], 99, 0).pad(32).u32(0)), 'UNKNOWN_TENSOR_TYPE', 'unknown ggml type id 99'],
    ['tensor type Q2_K', fileWith(1, 0, (b) => b.tensorInfo('t', [256], 10, 0).pad(32).raw(new Uint8Array(84))), 'UNKNOWN_TENSOR_TYPE', 'Q2_K (id 10) is not supported'],
    ['a duplicate tensor name', fileWith(2, 0, (b) => b.tensorInfo('t', [8], 0, 0).tensorInfo('t', [8], 0, 32).pad(32).raw(new Uint8Array(64))), 'DUPLICATE_TENSOR'],
    ['a misaligned offset', fileWith(1, 0, (b) => b.tensorInfo('t', [4], 0, 4).pad(32).raw(new Uint8Array(20))), 'MISALIGNED_OFFSET'],
    ['tensor data past the end', fileWith(1, 0, (b) => b.tensorInfo('t', [8], 0, 0).pad(32).raw(new Uint8Array(31))), 'TENSOR_OUT_OF_BOUNDS'],
    ['a tensor offset of 2^63', fileWith(1, 0, (b) => b.tensorInfo('t', [8], 0, 2n ** 63n).pad(32).raw(new Uint8Array(32))), 'TENSOR_OUT_OF_BOUNDS'],
    ['overlapping tensors', fileWith(2, 0, (b) => b.tensorInfo('a', [16], 0, 0).tensorInfo('b', [8], 0, 32).pad(32).raw(new Uint8Array(64))), 'TENSOR_OVERLAP'],
    ['the same tensor data twice', fileWith(2, 0, (b) => b.tensorInfo('a', [8], 0, 0).tensorInfo('b', [8], 0, 0).pad(32).raw(new Uint8Array(32))), 'TENSOR_OVERLAP'],
  ];
  for (const [label, bytes, code, message] of cases) {
    it(`rejects ${label} with ${code}`, async () => {
      const err = await readBytesAsGGUF(bytes).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(GGUFError);
      expect((err as GGUFError).code).toBe(code);
      expect((err as GGUFError).path).toMatch(/\.gguf$/);
      if (message) expect((err as GGUFError).message).toContain(message);
    });
  }

  // Overlong encoding, an encoded surrogate, a truncated sequence, a stray continuation byte, 0xFF.
  const badUtf8 = [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0x61, 0xe6, 0x97], [0x80], [0xff]].map((b) => Uint8Array.from(b));
  const places: [string, (b: GGUFBytes, s: Uint8Array) => void, number, number][] = [
    ['a key', (b, s) => b.str(s).u32(0).u8(0), 0, 1],
    ['a string value', (b, s) => b.str('k').u32(8).str(s), 0, 1],
    ['a string array item', (b, s) => b.str('k').u32(9).u32(8).u64(2).str('ok').str(s), 0, 1],
    ['a tensor name', (b, s) => b.tensorInfo(s, [8], 0, 0).pad(32).raw(new Uint8Array(32)), 1, 0],
  ];
  for (const [place, build, tensors, kvs] of places) {
    it(`rejects invalid UTF-8 in ${place} with INVALID_UTF8`, async () => {
      for (const s of badUtf8) {
        expect(await outcome(fileWith(tensors, kvs, (b) => build(b, s))), `bytes ${[...s]}`).toBe('INVALID_UTF8');
      }
      // A genuine U+FFFD (EF BF BD) is valid and must not be mistaken for a decoding error.
      expect(await outcome(fileWith(tensors, kvs, (b) => build(b, te.encode('x\uFFFDy'))))).toBe('OK');
    });
  }

  it('bounds array nesting depth', async () => {
    /** A value of `arrays` arrays nested in each other, the innermost an empty u8 array. */
    const nested = (arrays: number): Uint8Array =>
      fileWith(0, 1, (b) => {
        b.str('k').u32(9);
        for (let i = 1; i < arrays; i++) b.u32(9).u64(1);
        b.u32(0).u64(0);
      });
    expect(await outcome(nested(16))).toBe('OK');
    expect(await outcome(nested(17))).toBe('LIMIT_EXCEEDED');
    expect(await outcome(nested(10_000))).toBe('LIMIT_EXCEEDED');
  });

  it('enforces the header size limit before allocating', async () => {
    const bytes = fileWith(0, 1, (b) => b.str('k').u32(9).u32(0).u64(4096).raw(new Uint8Array(4096)));
    expect(await outcome(bytes)).toBe('OK');
    expect(await outcome(bytes, { maxHeaderBytes: 4000 })).toBe('LIMIT_EXCEEDED');
    expect(await outcome(valid.bytes, { maxHeaderBytes: 100 })).toBe('LIMIT_EXCEEDED');
  });

  it('reports a missing path as IO and a directory as NOT_A_FILE', async () => {
    const missing = await readGGUF(join(dir, 'missing.gguf')).then(() => undefined, (e: unknown) => e);
    expect(missing).toBeInstanceOf(GGUFError);
    expect((missing as GGUFError).code).toBe('IO');
    const aDir = join(dir, 'a-directory.gguf');
    await mkdir(aDir);
    const isDir = await readGGUF(aDir).then(() => undefined, (e: unknown) => e);
    expect(isDir).toBeInstanceOf(GGUFError);
    expect((isDir as GGUFError).code).toBe('NOT_A_FILE');
  });
});

/**
 * A file of `size` bytes that starts with `head` and is zeros after it, as a byte source that counts
 * the bytes handed out: a huge file costs nothing, and a test can assert how much was read.
 */
function virtualFile(head: Uint8Array, size: number): GGUFByteSource & { bytesRead: number } {
  return {
    size,
    bytesRead: 0,
    async read(buffer, offset, length, position) {
      const n = Math.max(0, Math.min(length, size - position));
      buffer.fill(0, offset, offset + n);
      if (position < head.length) buffer.set(head.subarray(position, Math.min(head.length, position + n)), offset);
      this.bytesRead += n;
      return n;
    },
  };
}

/** A header whose one KV `key` is an array of `count` items of GGUF type `itemType`; the items follow. */
function arrayHeader(key: string, itemType: number, count: number | bigint): Uint8Array {
  return fileWith(0, 1, (b) => b.str(key).u32(9).u32(itemType).u64(count));
}

describe('huge arrays', () => {
  it('a 120-million-entry bool array (inside the 128 MiB header limit) is refused before its items are read', async () => {
    // It used to be read whole: 36 s and 1.9 GB for a boolean[] nobody needs.
    const head = arrayHeader('junk.flags', 7, 120_000_000);
    const source = virtualFile(head, head.length + 120_000_000);
    const err = await parseGGUF(source, 'huge.gguf').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GGUFError);
    expect((err as GGUFError).code).toBe('LIMIT_EXCEEDED');
    expect((err as Error).message).toContain("array 'junk.flags' of 120000000 items");
    expect(source.bytesRead).toBeLessThanOrEqual(2 ** 20); // one read chunk, none of the items
  });

  it('the limit counts every array of the header together, of every item type, and can be raised', async () => {
    const b = new GGUFBytes().header(3, 0, 3);
    b.str('a').u32(9).u32(8).u64(3).str('x').str('y').str('z'); // 3 strings
    b.str('b').u32(9).u32(6).u64(4).f32(1).f32(2).f32(3).f32(4); // 4 floats
    b.str('c').u32(9).u32(0).u64(2).u8(1).u8(2); // 2 u8
    const bytes = b.build();
    expect(await outcome(bytes, { maxArrayItems: 9 })).toBe('OK');
    const err = await parseBytes(bytes, { maxArrayItems: 8 }).catch((e: unknown) => e);
    expect((err as GGUFError).code).toBe('LIMIT_EXCEEDED');
    expect((err as Error).message).toContain("array 'c' of 2 items");
  });

  it('the default limit leaves room for a tokenizer (257216 tokens, scores, types and as many merges)', async () => {
    const n = 257_216;
    const b = new GGUFBytes().header(3, 0, 4);
    b.str('tokenizer.ggml.tokens').u32(9).u32(8).u64(n);
    for (let i = 0; i < n; i++) b.str('t');
    b.str('tokenizer.ggml.scores').u32(9).u32(6).u64(n).raw(new Uint8Array(4 * n));
    b.str('tokenizer.ggml.token_type').u32(9).u32(5).u64(n).raw(new Uint8Array(4 * n));
    b.str('tokenizer.ggml.merges').u32(9).u32(8).u64(n);
    for (let i = 0; i < n; i++) b.str('a b');
    expect(await outcome(b.build())).toBe('OK');
  });

  it('fuzz: array headers with any item type and count end in a result or a typed error, reading boundedly', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 13 }),
        fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 2 ** 32 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
        fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 28 })),
        async (itemType, count, extra) => {
          runs++;
          const head = arrayHeader('k', itemType, count);
          const source = virtualFile(head, head.length + extra);
          try {
            await parseGGUF(source, 'fuzz.gguf');
          } catch (e) {
            if (!(e instanceof GGUFError)) throw e;
          }
          // What is read is what the accepted items need (at most the item budget of bytes), never the whole file.
          expect(source.bytesRead).toBeLessThanOrEqual(Math.max(2 ** 20, 4 * 2 ** 20 * 8 + 2 ** 20));
        },
      ),
      { numRuns: 300, seed: 16 },
    );
    expect(runs).toBe(300);
  });
});

describe('fuzzing readGGUF', () => {
  const valid = smallValidFile().bytes;
  const NUM_RUNS = 10_000;

  it(`random byte mutations end in a typed error or a valid result (${NUM_RUNS} cases)`, async () => {
    const codes = new Map<string, number>();
    // A mutation: some bytes overwritten (biased towards the header, where structure lives), then
    // optionally a truncation or an extension.
    const mutation = fc.record({
      writes: fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      headerBias: fc.boolean(),
      resize: fc.oneof(fc.constant(0), fc.integer({ min: -valid.length, max: 64 })),
    });
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(mutation, async ({ writes, headerBias, resize }) => {
        runs++;
        const bytes = new Uint8Array(Math.max(0, valid.length + resize));
        bytes.set(valid.subarray(0, bytes.length));
        for (const [at, value] of writes) {
          const i = headerBias ? at % 300 : at;
          if (i < bytes.length) bytes[i] = value;
        }
        const code = await outcome(bytes);
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }),
      { numRuns: NUM_RUNS, seed: 20240611 },
    );
    console.log(`fuzz: ${runs} mutated files`, Object.fromEntries(codes));
    expect(runs).toBe(NUM_RUNS);
    expect(codes.size).toBeGreaterThan(5); // the mutations reach many different checks
  });

  it('the same holds through real files and readGGUF (200 cases)', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat({ max: 299 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), async (writes) => {
        runs++;
        const bytes = valid.slice();
        for (const [at, value] of writes) bytes[at] = value;
        await outcome(bytes, { viaFile: true });
      }),
      { numRuns: 200, seed: 11 },
    );
    expect(runs).toBe(200);
  });

  it('random byte strings after a valid magic and version end in a typed error or a valid result', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), fc.constantFrom(2, 3), async (tail, version) => {
        runs++;
        await outcome(new GGUFBytes().raw(te.encode('GGUF')).u32(version).raw(tail).build());
      }),
      { numRuns: 2000, seed: 7 },
    );
    console.log(`fuzz: ${runs} random tails`);
  });
});
