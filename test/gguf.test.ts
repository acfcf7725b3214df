import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GGUFError,
  getArray,
  getBigInt,
  getBool,
  getInteger,
  getNumber,
  getOptionalArray,
  getOptionalBool,
  getOptionalNumber,
  getOptionalString,
  getString,
  readGGUF,
  writeGGUF,
  type GGMLTypeName,
  type GGUFFile,
  type GGUFTensorInput,
  type GGUFValue,
  type GGUFWriteInput,
} from '../lib/gguf/index.js';
import { GGUFBytes, paligemmaTextModelLayout, PALIGEMMA_TEXT, plausiblePaliGemmaVocab } from './helpers/gguf-fixtures.js';

/** ggml block layouts, typed in from ggml's block structs: [type id, elements per block, bytes per block]. */
const GGML: Record<GGMLTypeName, [id: number, blockSize: number, blockBytes: number]> = {
  F32: [0, 1, 4],
  F16: [1, 1, 2],
  Q4_0: [2, 32, 18],
  Q4_1: [3, 32, 20],
  Q5_0: [6, 32, 22],
  Q5_1: [7, 32, 24],
  Q8_0: [8, 32, 34],
  Q4_K: [12, 256, 144],
  Q5_K: [13, 256, 176],
  Q6_K: [14, 256, 210],
  Q8_K: [15, 256, 292],
  BF16: [30, 1, 2],
};

let dir: string;
let fileNo = 0;
/** A fresh path in the test's temp dir. */
const tmpPath = (): string => join(dir, `f${fileNo++}.gguf`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'paligemma-gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function roundTrip(input: GGUFWriteInput): Promise<GGUFFile> {
  const path = tmpPath();
  await writeGGUF(path, input);
  return readGGUF(path);
}

/** Deterministic pseudo-random bytes (xorshift32), so data checks do not depend on the code under test. */
function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function readBytes(path: string, offset: number, length: number): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    return new Uint8Array(buf);
  } finally {
    await fh.close();
  }
}

async function expectGGUFError(promise: Promise<unknown>, code: string, messagePart?: string): Promise<GGUFError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GGUFError);
  expect((err as GGUFError).code).toBe(code);
  if (messagePart) expect((err as GGUFError).message).toContain(messagePart);
  return err as GGUFError;
}

describe('GGUF metadata round trip', () => {
  // Every scalar type at its extremes; floats are chosen exactly representable so equality is exact.
  const scalars: [string, GGUFValue][] = [
    ['u8.min', { type: 'u8', value: 0 }],
    ['u8.max', { type: 'u8', value: 255 }],
    ['i8.min', { type: 'i8', value: -128 }],
    ['i8.max', { type: 'i8', value: 127 }],
    ['u16.max', { type: 'u16', value: 65535 }],
    ['i16.min', { type: 'i16', value: -32768 }],
    ['u32.max', { type: 'u32', value: 4294967295 }],
    ['i32.min', { type: 'i32', value: -2147483648 }],
    ['i32.max', { type: 'i32', value: 2147483647 }],
    ['u64.max', { type: 'u64', value: 2n ** 64n - 1n }],
    ['u64.big', { type: 'u64', value: 2n ** 53n + 1n }],
    ['i64.min', { type: 'i64', value: -(2n ** 63n) }],
    ['i64.max', { type: 'i64', value: 2n ** 63n - 1n }],
    ['f32.frac', { type: 'f32', value: 1.5 }],
    ['f32.eps', { type: 'f32', value: Math.fround(1e-6) }],
    ['f32.negzero', { type: 'f32', value: -0 }],
    ['f32.inf', { type: 'f32', value: -Infinity }],
    ['f32.nan', { type: 'f32', value: NaN }],
    ['f64.tiny', { type: 'f64', value: Number.MIN_VALUE }],
    ['f64.max', { type: 'f64', value: Number.MAX_VALUE }],
    ['f64.pi', { type: 'f64', value: Math.PI }],
    ['bool.true', { type: 'bool', value: true }],
    ['bool.false', { type: 'bool', value: false }],
  ];
  const strings: [string, GGUFValue][] = [
    ['str.empty', { type: 'string', value: '' }],
    ['str.ascii', { type: 'string', value: 'gemma' }],
    ['str.unicode', { type: 'string', value: '▁caption en 日本語 émoji 🦙 עברית \u0000 nul \uFFFD' }],
    ['str.long', { type: 'string', value: 'x'.repeat(3 << 20) }], // longer than one 1 MiB read chunk
  ];
  const arrays: [string, GGUFValue][] = [
    ['arr.u8', { type: 'array', itemType: 'u8', value: Uint8Array.of(0, 1, 255) }],
    ['arr.i8', { type: 'array', itemType: 'i8', value: Int8Array.of(-128, 0, 127) }],
    ['arr.u16', { type: 'array', itemType: 'u16', value: Uint16Array.of(0, 65535) }],
    ['arr.i16', { type: 'array', itemType: 'i16', value: Int16Array.of(-32768, 32767) }],
    ['arr.u32', { type: 'array', itemType: 'u32', value: Uint32Array.of(0, 4294967295) }],
    ['arr.i32', { type: 'array', itemType: 'i32', value: Int32Array.of(-2147483648, 7) }],
    ['arr.u64', { type: 'array', itemType: 'u64', value: BigUint64Array.of(0n, 2n ** 64n - 1n) }],
    ['arr.i64', { type: 'array', itemType: 'i64', value: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n) }],
    ['arr.f32', { type: 'array', itemType: 'f32', value: Float32Array.of(0.25, -1e30, Infinity) }],
    ['arr.f64', { type: 'array', itemType: 'f64', value: Float64Array.of(Math.E, -0) }],
    ['arr.bool', { type: 'array', itemType: 'bool', value: [true, false, true] }],
    ['arr.string', { type: 'array', itemType: 'string', value: ['', '<bos>', '▁the', '🦙', 'a\nb'] }],
    ['arr.empty.f32', { type: 'array', itemType: 'f32', value: new Float32Array(0) }],
    ['arr.empty.string', { type: 'array', itemType: 'string', value: [] }],
    ['arr.empty.array', { type: 'array', itemType: 'array', value: [] }],
    ['arr.big.f32', { type: 'array', itemType: 'f32', value: Float32Array.from({ length: 600_000 }, (_, i) => i / 4) }],
    [
      'arr.nested',
      {
        type: 'array',
        itemType: 'array',
        value: [
          { type: 'array', itemType: 'i32', value: Int32Array.of(1, 2, 3) },
          { type: 'array', itemType: 'string', value: ['x', 'ÿ'] },
          { type: 'array', itemType: 'array', value: [{ type: 'array', itemType: 'u64', value: BigUint64Array.of(9n) }] },
          { type: 'array', itemType: 'bool', value: [] },
        ],
      },
    ],
  ];

  it('reads back every value type exactly, in file order', async () => {
    const metadata = new Map([...scalars, ...strings, ...arrays]);
    const g = await roundTrip({ metadata, tensors: [] });
    expect(g.version).toBe(3);
    expect([...g.metadata.keys()]).toEqual([...metadata.keys()]);
    for (const [key, value] of metadata) {
      const got = g.metadata.get(key)!;
      if (key === 'arr.big.f32') {
        // Element-wise toEqual on 600k items takes seconds; compare the bytes instead.
        expect(got).toMatchObject({ type: 'array', itemType: 'f32' });
        expect(Buffer.from((got.value as Float32Array).buffer).equals(Buffer.from((value.value as Float32Array).buffer))).toBe(true);
      } else {
        expect(got, key).toEqual(value);
      }
    }
    // toEqual treats -0 and 0 alike; the sign must survive too.
    expect(Object.is(g.metadata.get('f32.negzero')!.value, -0)).toBe(true);
    expect(g.tensors).toEqual([]);
  });

  it('accepts metadata as a plain object', async () => {
    const g = await roundTrip({ metadata: { 'a.b': { type: 'u32', value: 7 }, 'c': { type: 'string', value: 'd' } }, tensors: [] });
    expect([...g.metadata]).toEqual([['a.b', { type: 'u32', value: 7 }], ['c', { type: 'string', value: 'd' }]]);
  });

  it('writes exactly the bytes of the GGUF v3 layout', async () => {
    const path = tmpPath();
    const data = Float32Array.of(1, 2, 3);
    await writeGGUF(path, {
      metadata: new Map<string, GGUFValue>([
        ['k', { type: 'u16', value: 0x1234 }],
        ['s', { type: 'array', itemType: 'string', value: ['é'] }],
        ['b', { type: 'bool', value: true }],
      ]),
      tensors: [
        { name: 'w', type: 'F32', dims: [3], data },
        { name: 'h', type: 'F16', dims: [2, 2] },
      ],
    });
    const expected = new GGUFBytes()
      .header(3, 2, 3)
      .str('k').u32(2).raw([0x34, 0x12])
      .str('s').u32(9).u32(8).u64(1).str('é')
      .str('b').u32(7).u8(1)
      .tensorInfo('w', [3], 0, 0)
      .tensorInfo('h', [2, 2], 1, 32) // 12 bytes of 'w' padded to 32
      .pad(32)
      .raw(new Uint8Array(data.buffer))
      .pad(32)
      .raw(new Uint8Array(8)) // 'h' has no data: zeros
      .pad(32)
      .build();
    expect(new Uint8Array(await readFile(path))).toEqual(expected);
  });
});

describe('GGUF versions and alignment', () => {
  it('reads a hand-built v2 file', async () => {
    const bytes = new GGUFBytes()
      .header(2, 1, 2)
      .str('general.architecture').u32(8).str('gemma')
      .str('v2.count').u32(10).u64(5)
      .tensorInfo('t', [4], 0, 0)
      .pad(32)
      .f32(1).f32(2).f32(3).f32(4)
      .build();
    const path = tmpPath();
    await writeFile(path, bytes);
    const g = await readGGUF(path);
    expect(g.version).toBe(2);
    expect(g.alignment).toBe(32);
    expect(getString(g, 'general.architecture')).toBe('gemma');
    expect(g.metadata.get('v2.count')).toEqual({ type: 'u64', value: 5n });
    expect(g.tensors).toEqual([{ name: 't', type: 'F32', typeId: 0, dims: [4], elements: 4, offset: g.dataOffset, size: 16 }]);
    expect(g.dataOffset % 32).toBe(0);
    expect(g.dataOffset + 16).toBe(bytes.length);
    expect(g.fileSize).toBe(bytes.length);
  });

  for (const alignment of [1, 8, 64, 4096]) {
    it(`honours general.alignment = ${alignment}`, async () => {
      const a = pseudoRandomBytes(20, 1);
      const b = pseudoRandomBytes(34 * 3, 2);
      const path = tmpPath();
      await writeGGUF(path, {
        metadata: { 'general.alignment': { type: 'u32', value: alignment } },
        tensors: [
          { name: 'a', type: 'F32', dims: [5], data: a },
          { name: 'b', type: 'Q8_0', dims: [32, 3], data: b },
        ],
      });
      const g = await readGGUF(path);
      expect(g.alignment).toBe(alignment);
      expect(g.dataOffset % alignment).toBe(0);
      const [ta, tb] = g.tensors;
      expect(ta!.offset).toBe(g.dataOffset);
      expect(tb!.offset).toBe(g.dataOffset + Math.ceil(20 / alignment) * alignment);
      expect(tb!.size).toBe(102);
      expect(await readBytes(path, ta!.offset, 20)).toEqual(a);
      expect(await readBytes(path, tb!.offset, 102)).toEqual(b);
      expect(g.fileSize).toBe(tb!.offset + Math.ceil(102 / alignment) * alignment);
    });
  }
});

describe('GGUF tensors', () => {
  it('sizes and places tensors of every supported type, and their data reads back', async () => {
    const names = Object.keys(GGML) as GGMLTypeName[];
    const tensors = names.map((type, i) => {
      const [, blockSize, blockBytes] = GGML[type];
      const dims = [blockSize * 2, 3];
      return { name: `t.${type}`, type, dims, data: pseudoRandomBytes(2 * 3 * blockBytes, i + 1) };
    });
    const path = tmpPath();
    await writeGGUF(path, { metadata: {}, tensors });
    const g = await readGGUF(path);
    let expectedOffset = g.dataOffset;
    for (const [i, t] of g.tensors.entries()) {
      const input = tensors[i]!;
      const [id, blockSize] = GGML[input.type];
      expect(t).toEqual({
        name: input.name,
        type: input.type,
        typeId: id,
        dims: input.dims,
        elements: blockSize * 6,
        offset: expectedOffset,
        size: input.data.length,
      });
      expect(g.tensorsByName.get(t.name)).toBe(t);
      expect(await readBytes(path, t.offset, t.size)).toEqual(input.data);
      expectedOffset += Math.ceil(t.size / 32) * 32;
    }
    expect(g.fileSize).toBe(expectedOffset);
  });

  it('streams data given as typed arrays, chunk iterables, async iterables and thunks', async () => {
    const bytes = pseudoRandomBytes(64, 7);
    const chunks = [bytes.subarray(0, 10), bytes.subarray(10, 10), bytes.subarray(10, 64)];
    async function* asyncChunks(): AsyncGenerator<Uint8Array> {
      for (const c of chunks) yield c;
    }
    const forms: GGUFTensorInput['data'][] = [
      new Float32Array(bytes.buffer.slice(0)),
      new DataView(bytes.buffer.slice(0)),
      chunks,
      asyncChunks(),
      () => bytes,
      asyncChunks,
    ];
    const path = tmpPath();
    await writeGGUF(path, { metadata: {}, tensors: forms.map((data, i) => ({ name: `t${i}`, type: 'F32', dims: [16], data })) });
    const g = await readGGUF(path);
    for (const t of g.tensors) expect(await readBytes(path, t.offset, t.size), t.name).toEqual(bytes);
  });

  it('leaves tensors without data as sparse holes of zeros', async () => {
    const path = tmpPath();
    const data = pseudoRandomBytes(16, 3);
    await writeGGUF(path, {
      metadata: {},
      tensors: [
        { name: 'hole', type: 'F16', dims: [4096, 8192] }, // 64 MiB
        { name: 'small', type: 'F32', dims: [4], data },
      ],
    });
    const g = await readGGUF(path);
    const st = await stat(path);
    expect(st.size).toBe(g.fileSize);
    expect(g.tensors[1]!.offset).toBe(g.dataOffset + 64 * 2 ** 20);
    // A filesystem without holes would allocate 64 MiB; with them only a few blocks are used.
    expect(st.blocks * 512).toBeLessThan(2 ** 20);
    expect(await readBytes(path, g.tensors[0]!.offset + 12345, 16)).toEqual(new Uint8Array(16));
    expect(await readBytes(path, g.tensors[1]!.offset, 16)).toEqual(data);
  });
});

describe('GGUF writer input validation', () => {
  const bad: [string, unknown, string][] = [
    ['u8 out of range', { type: 'u8', value: 256 }, 'out of range'],
    ['i8 below range', { type: 'i8', value: -129 }, 'out of range'],
    ['non-integer u32', { type: 'u32', value: 1.5 }, 'non-integer'],
    ['NaN i32', { type: 'i32', value: NaN }, 'non-integer'],
    ['u64 as number', { type: 'u64', value: 5 }, 'bigint'],
    ['negative u64', { type: 'u64', value: -1n }, 'out of range'],
    ['i64 too big', { type: 'i64', value: 2n ** 63n }, 'out of range'],
    ['f32 as string', { type: 'f32', value: '1' }, 'declared f32'],
    ['bool as number', { type: 'bool', value: 1 }, 'declared bool'],
    ['string as number', { type: 'string', value: 3 }, 'declared string'],
    ['lone surrogate', { type: 'string', value: 'a\uD800b' }, 'lone surrogate'],
    ['unknown type', { type: 'f16', value: 1 }, 'unknown type'],
    ['not an object', 42, 'not a { type, value }'],
    ['wrong typed array', { type: 'array', itemType: 'f32', value: Int32Array.of(1) }, 'Float32Array'],
    ['plain array for f32', { type: 'array', itemType: 'f32', value: [1, 2] }, 'Float32Array'],
    ['bool array item', { type: 'array', itemType: 'bool', value: [true, 0] }, 'not a boolean'],
    ['string array item', { type: 'array', itemType: 'string', value: ['a', 1] }, 'well-formed string'],
    ['unknown item type', { type: 'array', itemType: 'f16', value: [] }, 'unknown item type'],
    ['nested non-array', { type: 'array', itemType: 'array', value: [{ type: 'u8', value: 1 }] }, 'not an array value'],
    ['alignment 0', { type: 'u32', value: 0 }, 'power of two'],
  ];
  for (const [label, value, message] of bad) {
    it(`rejects metadata: ${label}`, async () => {
      const key = label.startsWith('alignment') ? 'general.alignment' : 'bad.key';
      const path = tmpPath();
      await expectGGUFError(writeGGUF(path, { metadata: { [key]: value as GGUFValue }, tensors: [] }), 'INVALID_INPUT', message);
      await expect(stat(path)).rejects.toThrow(); // nothing was created
    });
  }

  it('rejects alignment stored with another type, and deeply nested arrays', async () => {
    await expectGGUFError(
      writeGGUF(tmpPath(), { metadata: { 'general.alignment': { type: 'u64', value: 64n } }, tensors: [] }),
      'INVALID_INPUT',
      'must be a u32',
    );
    let deep: GGUFValue = { type: 'array', itemType: 'u8', value: new Uint8Array(0) };
    for (let i = 0; i < 20; i++) deep = { type: 'array', itemType: 'array', value: [deep] };
    await expectGGUFError(writeGGUF(tmpPath(), { metadata: { deep }, tensors: [] }), 'INVALID_INPUT', 'deeper');
  });

  const badTensors: [string, unknown, string][] = [
    ['dim 0', { name: 't', type: 'F32', dims: [0] }, 'dim 0'],
    ['negative dim', { name: 't', type: 'F32', dims: [4, -1] }, 'dim -1'],
    ['NaN dim', { name: 't', type: 'F32', dims: [NaN] }, 'dim NaN'],
    ['infinite dim', { name: 't', type: 'F32', dims: [Infinity] }, 'dim Infinity'],
    ['fractional dim', { name: 't', type: 'F32', dims: [1.5] }, 'dim 1.5'],
    ['no dims', { name: 't', type: 'F32', dims: [] }, '1..4 dims'],
    ['5 dims', { name: 't', type: 'F32', dims: [1, 1, 1, 1, 1] }, '1..4 dims'],
    ['2^53 elements', { name: 't', type: 'F32', dims: [2 ** 27, 2 ** 27] }, '2^53'],
    ['unknown type', { name: 't', type: 'Q2_K', dims: [256] }, 'unknown type'],
    ['partial block', { name: 't', type: 'Q4_0', dims: [48, 2] }, 'block size 32'],
    ['non-string name', { name: 5, type: 'F32', dims: [1] }, 'tensor name'],
  ];
  for (const [label, tensor, message] of badTensors) {
    it(`rejects tensor: ${label}`, async () => {
      await expectGGUFError(writeGGUF(tmpPath(), { metadata: {}, tensors: [tensor as GGUFTensorInput] }), 'INVALID_INPUT', message);
    });
  }

  it('rejects duplicate tensor names', async () => {
    const t: GGUFTensorInput = { name: 'dup', type: 'F32', dims: [1] };
    await expectGGUFError(writeGGUF(tmpPath(), { metadata: {}, tensors: [t, { ...t }] }), 'INVALID_INPUT', "'dup' appears twice");
  });

  const badData: [string, unknown, string][] = [
    ['too few bytes', new Uint8Array(15), 'has 15 bytes, expected 16'],
    ['too many bytes', new Uint8Array(17), 'larger than its 16 bytes'],
    ['chunks summing short', [new Uint8Array(8), new Uint8Array(4)], 'has 12 bytes'],
    ['chunks running over', [new Uint8Array(8), new Uint8Array(9)], 'larger than'],
    ['a non-bytes chunk', [new Uint8Array(8), 'abcdefgh'], 'not an ArrayBufferView'],
    ['a number', 16, 'not bytes or an (async) iterable'],
    ['a string', 'x'.repeat(16), 'not bytes or an (async) iterable'],
  ];
  for (const [label, data, message] of badData) {
    it(`rejects tensor data that is ${label}, removing the partial file`, async () => {
      const path = tmpPath();
      const tensors = [
        { name: 'ok', type: 'F32', dims: [4], data: new Uint8Array(16) },
        { name: 'bad', type: 'F32', dims: [4], data },
      ] as GGUFTensorInput[];
      await expectGGUFError(writeGGUF(path, { metadata: {}, tensors }), 'INVALID_INPUT', message);
      await expect(stat(path)).rejects.toThrow();
    });
  }

  it('passes through an error thrown by a data source and removes the partial file', async () => {
    const path = tmpPath();
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(8);
      throw new Error('source broke');
    }
    const tensors: GGUFTensorInput[] = [{ name: 't', type: 'F32', dims: [4], data: failing() }];
    await expect(writeGGUF(path, { metadata: {}, tensors })).rejects.toThrow('source broke');
    await expect(stat(path)).rejects.toThrow();
  });

  it('reports an unwritable path as IO', async () => {
    await expectGGUFError(writeGGUF(join(dir, 'no-such-dir', 'x.gguf'), { metadata: {}, tensors: [] }), 'IO');
  });
});

describe('GGUF metadata accessors', () => {
  const g = {
    path: '/models/x.gguf',
    metadata: new Map<string, GGUFValue>([
      ['s', { type: 'string', value: 'gemma' }],
      ['b', { type: 'bool', value: true }],
      ['u32', { type: 'u32', value: 2048 }],
      ['f32', { type: 'f32', value: 0.5 }],
      ['u64', { type: 'u64', value: 257216n }],
      ['u64.huge', { type: 'u64', value: 2n ** 60n }],
      ['scores', { type: 'array', itemType: 'f32', value: Float32Array.of(1, 2) }],
      ['tokens', { type: 'array', itemType: 'string', value: ['a', 'b'] }],
    ]),
  };

  it('returns values of the asked type', () => {
    expect(getString(g, 's')).toBe('gemma');
    expect(getBool(g, 'b')).toBe(true);
    expect(getNumber(g, 'u32')).toBe(2048);
    expect(getNumber(g, 'f32')).toBe(0.5);
    expect(getNumber(g, 'u64')).toBe(257216);
    expect(getInteger(g, 'u64')).toBe(257216);
    expect(getBigInt(g, 'u32')).toBe(2048n);
    expect(getBigInt(g, 'u64.huge')).toBe(2n ** 60n);
    const scores: Float32Array = getArray(g, 'scores', 'f32');
    expect(scores).toEqual(Float32Array.of(1, 2));
    const tokens: string[] = getArray(g, 'tokens', 'string');
    expect(tokens).toEqual(['a', 'b']);
  });

  it('optional variants return undefined only for absent keys', () => {
    expect(getOptionalString(g, 'nope')).toBeUndefined();
    expect(getOptionalBool(g, 'nope')).toBeUndefined();
    expect(getOptionalNumber(g, 'nope')).toBeUndefined();
    expect(getOptionalArray(g, 'nope', 'i32')).toBeUndefined();
    expect(getOptionalString(g, 's')).toBe('gemma');
    expect(getOptionalBool(g, 'b')).toBe(true);
    expect(() => getOptionalBool(g, 's')).toThrow(GGUFError);
  });

  it('throws MISSING_KEY and WRONG_TYPE naming the key', () => {
    const code = (f: () => unknown): [string, string] => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(GGUFError);
        return [(e as GGUFError).code, (e as GGUFError).message];
      }
      throw new Error('did not throw');
    };
    expect(code(() => getString(g, 'general.name'))).toEqual(['MISSING_KEY', "/models/x.gguf: metadata key 'general.name' is missing"]);
    expect(code(() => getString(g, 'u32'))).toEqual(['WRONG_TYPE', "/models/x.gguf: metadata key 'u32' should be a string but is u32"]);
    expect(code(() => getBool(g, 's'))[0]).toBe('WRONG_TYPE');
    expect(code(() => getNumber(g, 's'))[0]).toBe('WRONG_TYPE');
    expect(code(() => getNumber(g, 'u64.huge'))).toEqual(['WRONG_TYPE', expect.stringContaining('does not fit')]);
    expect(code(() => getInteger(g, 'f32'))[1]).toContain("'f32' should be an integer but is f32");
    expect(code(() => getArray(g, 'scores', 'i32'))[1]).toContain("'scores' should be an array of i32 but is array of f32");
    expect(code(() => getArray(g, 's', 'string'))[0]).toBe('WRONG_TYPE');
  });
});

describe('GGUF with the metadata and tensor table of paligemma-3b-mix-224', () => {
  it('writes a sparse ~5 GB file and reads it back well under a second', async () => {
    const path = tmpPath();
    const vocab = plausiblePaliGemmaVocab();
    const input = paligemmaTextModelLayout({ vocab });
    await writeGGUF(path, input);

    const start = performance.now();
    const g = await readGGUF(path);
    const ms = performance.now() - start;
    console.log(`readGGUF of the real-size PaliGemma text GGUF (header ${(g.dataOffset / 1e6).toFixed(2)} MB): ${ms.toFixed(0)} ms`);
    // The issue asks for "well under a second"; 1.5 s leaves room for a noisy shared machine.
    expect(ms).toBeLessThan(1500);

    // Sizes computed here from the shapes: F16 = 2 bytes, F32 = 4, each tensor padded to 32.
    const { hidden, vocabSize, blocks, ffn, headDim } = PALIGEMMA_TEXT;
    const perBlock = [hidden * 4, hidden * hidden * 2, hidden * headDim * 2, hidden * headDim * 2, hidden * hidden * 2,
      hidden * 4, hidden * ffn * 2, hidden * ffn * 2, ffn * hidden * 2];
    const sizes = [hidden * vocabSize * 2, ...Array.from({ length: blocks }, () => perBlock).flat(), hidden * 4];
    expect(g.tensors.map((t) => t.size)).toEqual(sizes);
    let offset = g.dataOffset;
    for (const [i, t] of g.tensors.entries()) {
      expect(t.name).toBe(input.tensors[i]!.name);
      expect(t.offset).toBe(offset);
      offset += Math.ceil(sizes[i]! / 32) * 32;
    }
    expect(g.fileSize).toBe(offset);
    expect(g.fileSize).toBeGreaterThan(5.0e9);
    expect(g.fileSize).toBeLessThan(5.05e9);
    expect(g.tensorsByName.get('blk.17.ffn_down.weight')!.dims).toEqual([16384, 2048]);
    expect(g.tensorsByName.get('token_embd.weight')).toMatchObject({ type: 'F16', dims: [2048, 257216] });

    const st = await stat(path);
    expect(st.size).toBe(g.fileSize);
    expect(st.blocks * 512).toBeLessThan(64 * 2 ** 20); // only the ~7 MB header is on disk

    expect(getString(g, 'general.architecture')).toBe('gemma');
    expect(getInteger(g, 'gemma.block_count')).toBe(18);
    expect(getNumber(g, 'gemma.attention.layer_norm_rms_epsilon')).toBe(Math.fround(1e-6));
    expect(g.metadata.has('tokenizer.ggml.add_space_prefix')).toBe(false);
    const tokens = getArray(g, 'tokenizer.ggml.tokens', 'string');
    expect(tokens.length).toBe(257216);
    let mismatches = 0; // a loop: toEqual on 257k strings is slow
    for (let i = 0; i < tokens.length; i++) if (tokens[i] !== vocab.tokens[i]) mismatches++;
    expect(mismatches).toBe(0);
    expect(tokens[2]).toBe('<bos>');
    expect(tokens[256000]).toBe('<loc0000>');
    const bytesOf = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    expect(bytesOf(getArray(g, 'tokenizer.ggml.scores', 'f32')).equals(bytesOf(vocab.scores))).toBe(true);
    const tokenTypes = getArray(g, 'tokenizer.ggml.token_type', 'i32');
    expect(bytesOf(tokenTypes).equals(bytesOf(vocab.tokenTypes))).toBe(true);
    expect(tokenTypes[217 + 9]).toBe(6); // <0x09> is a byte piece
  });
});
