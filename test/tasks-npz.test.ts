import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { NpzError, parseNpz, readNpz, type NpzErrorCode } from '../lib/tasks/index.js';
import { npyBytes, npzBytes, zipBytes, type NpyInput } from './helpers/npz.js';

const arrays: Record<string, NpyInput> = {
  'decoder.0.weight': { shape: [3, 2, 1, 1], data: [1, -2, 3.5, 4, 0.25, -0] },
  bias: { shape: [3], data: [0.5, 1.5, -2.5] },
  scalar: { shape: [], data: [7] },
  empty: { shape: [0, 4], data: [] },
};

function expectNpzError(fn: () => unknown, code: NpzErrorCode, message?: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NpzError);
    expect((err as NpzError).code, (err as Error).message).toBe(code);
    if (message) expect((err as Error).message).toMatch(message);
    return;
  }
  throw new Error(`expected NpzError ${code}`);
}

/** The offset of the first central directory entry (signature PK\1\2). */
const centralOffset = (b: Buffer) => b.indexOf(Buffer.from([0x50, 0x4b, 1, 2]));

describe('parseNpz', () => {
  for (const options of [{}, { method: 'deflate' as const }, { zip64: true }, { method: 'deflate' as const, zip64: true }]) {
    it(`reads what np.savez writes (${JSON.stringify(options)})`, () => {
      const out = parseNpz(npzBytes(arrays, options), 'test.npz');
      expect([...out.keys()]).toEqual(Object.keys(arrays));
      expect(out.get('decoder.0.weight')).toEqual({ shape: [3, 2, 1, 1], data: Float32Array.from([1, -2, 3.5, 4, 0.25, -0]) });
      expect(out.get('bias')!.data).toEqual(Float32Array.from([0.5, 1.5, -2.5]));
      expect(out.get('scalar')).toEqual({ shape: [], data: Float32Array.from([7]) });
      expect(out.get('empty')).toEqual({ shape: [0, 4], data: new Float32Array(0) });
    });
  }

  it('converts float16 and float64 arrays to float32 and decodes only the selected arrays', () => {
    const out = parseNpz(
      npzBytes({
        half: { shape: [4], data: [1, -0.5, 65504, 2 ** -14], dtype: '<f2' },
        double: { shape: [2], data: [0.1, 1e300], dtype: '<f8' },
        ints: { shape: [2], data: [1, 2], dtype: '<i4' },
      }),
      'mixed.npz',
      { select: (name) => name !== 'ints' },
    );
    expect(out.get('half')!.data).toEqual(Float32Array.from([1, -0.5, 65504, 2 ** -14]));
    expect(out.get('double')!.data).toEqual(Float32Array.from([0.1, Infinity]));
    expect(out.has('ints')).toBe(false);
  });

  it('names empty, foreign and truncated files', () => {
    expectNpzError(() => parseNpz(new Uint8Array(0), 'x.npz'), 'NOT_ZIP');
    expectNpzError(() => parseNpz(Buffer.from('just some text, certainly not a zip archive'), 'x.npz'), 'NOT_ZIP', /x\.npz: not an \.npz/);
    const good = npzBytes(arrays, { method: 'deflate' });
    expectNpzError(() => parseNpz(good.subarray(0, good.length - 5), 'x.npz'), 'CORRUPT', /truncated/);
    // Cut anywhere: always an NpzError, never another exception.
    for (let n = 0; n < good.length; n += 7) {
      expect(() => parseNpz(good.subarray(0, n), 'x.npz')).toThrow(NpzError);
    }
  });

  it('detects damaged data, sizes and headers', () => {
    const stored = npzBytes({ a: { shape: [64], data: Array.from({ length: 64 }, (_, i) => i) } });
    const flipped = Buffer.from(stored);
    flipped[200] ^= 0x40; // inside the array data
    expectNpzError(() => parseNpz(flipped, 'x.npz'), 'CORRUPT', /CRC-32/);

    const deflated = npzBytes({ a: { shape: [64], data: Array.from({ length: 64 }, (_, i) => i) } }, { method: 'deflate' });
    const badStream = Buffer.from(deflated);
    badStream[40] ^= 0xff;
    expect(() => parseNpz(badStream, 'x.npz')).toThrow(NpzError);

    // A deflate stream that inflates to more than the declared size is cut at that size (no bomb).
    const bomb = Buffer.from(deflated);
    const cd = centralOffset(bomb);
    bomb.writeUInt32LE(100, cd + 24);
    expectNpzError(() => parseNpz(bomb, 'x.npz'), 'CORRUPT');

    const badOffset = Buffer.from(stored);
    badOffset.writeUInt32LE(12345678, centralOffset(badOffset) + 42);
    expectNpzError(() => parseNpz(badOffset, 'x.npz'), 'CORRUPT', /local header/);

    const badCd = Buffer.from(stored);
    badCd.writeUInt32LE(0x12345678, centralOffset(badCd));
    expectNpzError(() => parseNpz(badCd, 'x.npz'), 'CORRUPT', /central directory entry 0/);
  });

  it('refuses what it does not support, by name', () => {
    const stored = npzBytes({ a: { shape: [2], data: [1, 2] } });
    const method = Buffer.from(stored);
    method.writeUInt16LE(12, centralOffset(method) + 10); // bzip2
    expectNpzError(() => parseNpz(method, 'x.npz'), 'UNSUPPORTED', /compression method 12/);
    const encrypted = Buffer.from(stored);
    encrypted.writeUInt16LE(1, centralOffset(encrypted) + 8);
    expectNpzError(() => parseNpz(encrypted, 'x.npz'), 'UNSUPPORTED', /encrypted/);
    expectNpzError(() => parseNpz(npzBytes({ i: { shape: [1], data: [1], dtype: '<i4' } }), 'x.npz'), 'UNSUPPORTED', /<i4/);
    expectNpzError(() => parseNpz(npzBytes({ f: { shape: [2, 2], data: [1, 2, 3, 4], fortranOrder: true } }), 'x.npz'), 'UNSUPPORTED', /Fortran/);
    // A Fortran-order vector is laid out like a C-order one.
    expect(parseNpz(npzBytes({ f: { shape: [3], data: [1, 2, 3], fortranOrder: true } }), 'x.npz').get('f')!.data).toEqual(Float32Array.from([1, 2, 3]));
  });

  it('rejects malformed .npy members', () => {
    const npy = npyBytes({ shape: [2, 2], data: [1, 2, 3, 4] });
    const zipOf = (b: Buffer) => zipBytes([['m.npy', b]]);
    const magic = Buffer.from(npy);
    magic[1] = 0x41;
    expectNpzError(() => parseNpz(zipOf(magic), 'x.npz'), 'BAD_NPY', /m\.npy: not an \.npy file/);
    expectNpzError(() => parseNpz(zipOf(npy.subarray(0, npy.length - 4)), 'x.npz'), 'BAD_NPY', /needs 16 bytes, the member has 12/);
    const header = Buffer.from(npy);
    header.write("{'dexcr'", 10, 'latin1');
    expectNpzError(() => parseNpz(zipOf(header), 'x.npz'), 'BAD_NPY', /lacks descr/);
    const longHeader = Buffer.from(npy);
    longHeader.writeUInt16LE(60000, 8);
    expectNpzError(() => parseNpz(zipOf(longHeader), 'x.npz'), 'BAD_NPY', /header runs past/);
    const shape = Buffer.from(npy);
    shape.write("(2, -2)", npy.indexOf('(2, 2)'), 'latin1');
    expectNpzError(() => parseNpz(zipOf(shape), 'x.npz'), 'BAD_NPY', /bad shape/);
    // Entries that are not .npy are ignored, as np.load does.
    expect([...parseNpz(zipBytes([['notes.txt', Buffer.from('hi')], ['m.npy', npy]]), 'x.npz').keys()]).toEqual(['m']);
  });

  it('enforces its size limits', () => {
    const big = npzBytes({ a: { shape: [1000], data: new Float32Array(1000) } });
    expectNpzError(() => parseNpz(big, 'x.npz', { maxBytes: 1000 }), 'LIMIT_EXCEEDED');
    // Zeros deflate to almost nothing: a small file can still decode to more than the limit.
    const zeros = { shape: [10000], data: new Float32Array(10000) };
    const small = npzBytes({ a: zeros, b: zeros }, { method: 'deflate' });
    expect(small.length).toBeLessThan(2000);
    expectNpzError(() => parseNpz(small, 'x.npz', { maxBytes: 50000 }), 'LIMIT_EXCEEDED', /selected arrays/);
    expect(parseNpz(small, 'x.npz', { maxBytes: 50000, select: (n) => n === 'a' }).get('a')!.data).toHaveLength(10000);
  });

  it('never throws anything but NpzError on damaged archives (fuzz)', () => {
    const base = npzBytes(arrays, { method: 'deflate', zip64: true });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const b = Buffer.from(base);
        for (const [at, v] of edits) b[at] = v;
        try {
          parseNpz(b, 'fuzz.npz');
        } catch (err) {
          if (!(err instanceof NpzError)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('readNpz', () => {
  it('reads a file and reports I/O problems as NpzError', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'paligemma-npz-'));
    try {
      const file = path.join(dir, 'a.npz');
      await writeFile(file, npzBytes(arrays));
      expect((await readNpz(file)).get('bias')!.data).toEqual(Float32Array.from([0.5, 1.5, -2.5]));
      await expect(readNpz(path.join(dir, 'missing.npz'))).rejects.toMatchObject({ name: 'NpzError', code: 'IO' });
      await expect(readNpz(file, { maxBytes: 10 })).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
