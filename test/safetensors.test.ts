import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SafetensorsError } from '../lib/convert/errors.js';
import {
  MAX_HEADER_BYTES, openCheckpoint, readSafetensorsHeader, readTensorBytes, readTensorChunks,
} from '../lib/convert/safetensors.js';
import { encodeSafetensors, fixtureDir, prng, readSafetensorsSimple, safetensorsHeader, writeSafetensors } from './helpers/hf-checkpoint.js';
import type { STEntry } from './helpers/hf-checkpoint.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'safetensors-test-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function randomData(bytes: number, seed: number): Uint8Array {
  const rand = prng(seed);
  return Uint8Array.from({ length: bytes }, () => Math.floor(rand() * 256));
}

/** Writes raw bytes to a fresh file and returns its path. */
let counter = 0;
function file(bytes: Uint8Array): string {
  const p = path.join(tmp, `f${counter++}.safetensors`);
  writeFileSync(p, bytes);
  return p;
}

/** Expects `readSafetensorsHeader` to reject with this code and a message matching `pattern`. */
async function rejects(p: string, code: string, pattern?: RegExp): Promise<void> {
  const err = await readSafetensorsHeader(p).then(() => undefined, (e: unknown) => e);
  expect(err, 'should reject').toBeInstanceOf(SafetensorsError);
  expect((err as SafetensorsError).code).toBe(code);
  expect((err as SafetensorsError).path).toBe(p);
  if (pattern) expect((err as Error).message).toMatch(pattern);
}

describe('safetensors header', () => {
  it('reads the fixture: every tensor where an independent parser finds it', async () => {
    const st = await readSafetensorsHeader(path.join(fixtureDir, 'model.safetensors'));
    const simple = readSafetensorsSimple(path.join(fixtureDir, 'model.safetensors'));
    expect(st.metadata).toEqual({ format: 'pt' });
    expect([...st.tensors.keys()].sort()).toEqual([...simple.keys()].sort());
    const t = st.tensors.get('vision_tower.vision_model.embeddings.patch_embedding.weight')!;
    expect(t.dtype).toBe('F32');
    expect(t.shape).toEqual([32, 3, 14, 14]);
    expect(await readTensorBytes(t)).toEqual(simple.get(t.name)!.bytes);
  });

  it('reads F32, F16 and BF16 tensors and streams them in element-aligned chunks', async () => {
    const entries: STEntry[] = [
      { name: 'a', dtype: 'F32', shape: [3, 5], data: randomData(60, 1) },
      { name: 'b', dtype: 'F16', shape: [7], data: randomData(14, 2) },
      { name: 'c', dtype: 'BF16', shape: [2, 2, 3], data: randomData(24, 3) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) },
    ];
    const p = path.join(tmp, 'types.safetensors');
    writeSafetensors(p, entries);
    const st = await readSafetensorsHeader(p);
    for (const e of entries) {
      const t = st.tensors.get(e.name)!;
      expect(t.dtype).toBe(e.dtype);
      expect(t.shape).toEqual(e.shape);
      expect(await readTensorBytes(t)).toEqual(e.data);
      const chunks: Uint8Array[] = [];
      for await (const c of readTensorChunks(t, 5)) chunks.push(c); // 5 bytes → 4-byte (F32) or 4-byte (2×F16) steps
      const item = e.dtype === 'F32' ? 4 : 2;
      for (const c of chunks) expect(c.byteLength % item).toBe(0);
      expect(Buffer.concat(chunks)).toEqual(Buffer.from(e.data!));
    }
  });

  const valid = (header: Record<string, unknown>, dataBytes = 16) => file(encodeSafetensors(header, new Uint8Array(dataBytes)));

  it('rejects files too short for a header, and lengths past the end', async () => {
    await rejects(file(new Uint8Array(5)), 'TRUNCATED', /too short/);
    const bytes = encodeSafetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
    await rejects(file(bytes.subarray(0, 20)), 'TRUNCATED', /header length/);
  });

  it('rejects a header length over the limit without reading it', async () => {
    const bytes = new Uint8Array(64);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES) + 1n, true);
    await rejects(file(bytes), 'HEADER_TOO_LARGE', /limit/);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 63n, true);
    await rejects(file(bytes), 'HEADER_TOO_LARGE');
  });

  it('rejects headers that are not UTF-8 JSON objects', async () => {
    const raw = (json: Uint8Array) => {
      const b = new Uint8Array(8 + json.length);
      new DataView(b.buffer).setBigUint64(0, BigInt(json.length), true);
      b.set(json, 8);
      return file(b);
    };
    await rejects(raw(Buffer.from('{"a": ')), 'BAD_HEADER', /JSON/);
    await rejects(raw(Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), 'BAD_HEADER', /UTF-8/);
    await rejects(raw(Buffer.from('[1, 2]')), 'BAD_HEADER', /not a JSON object/);
    await rejects(raw(Buffer.from('')), 'BAD_HEADER');
    await rejects(valid({ __metadata__: { format: 1 } }), 'BAD_HEADER', /__metadata__/);
    await rejects(valid({ a: 5 }), 'BAD_HEADER', /tensor "a"/);
  });

  it('rejects unsupported dtypes, naming the tensor', async () => {
    await rejects(valid({ 'x.weight': { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }), 'UNSUPPORTED_DTYPE', /"x\.weight" has dtype I64/);
    await rejects(valid({ y: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }), 'UNSUPPORTED_DTYPE', /F8_E4M3/);
    await rejects(valid({ y: { shape: [2], data_offsets: [0, 2] } }), 'BAD_HEADER', /no dtype/);
  });

  it('rejects bad shapes', async () => {
    await rejects(valid({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }), 'BAD_SHAPE');
    await rejects(valid({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }), 'BAD_SHAPE');
    await rejects(valid({ a: { dtype: 'F32', shape: '4', data_offsets: [0, 16] } }), 'BAD_SHAPE');
    await rejects(valid({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 16] } }), 'BAD_SHAPE', /does not fit/);
    await rejects(valid({ a: { dtype: 'F32', shape: Array(9).fill(1), data_offsets: [0, 4] } }), 'BAD_SHAPE');
  });

  it('rejects offsets outside the data section, of the wrong size, or overlapping', async () => {
    await rejects(valid({ a: { dtype: 'F32', shape: [2], data_offsets: [12, 20] } }), 'BAD_OFFSETS', /outside/);
    await rejects(valid({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 4] } }), 'BAD_OFFSETS');
    await rejects(valid({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 12] } }), 'BAD_OFFSETS', /needs 8/);
    await rejects(valid({ a: { dtype: 'F32', shape: [2], data_offsets: [0] } }), 'BAD_OFFSETS');
    await rejects(valid({ a: { dtype: 'F32', shape: [2], data_offsets: [-4, 4] } }), 'BAD_OFFSETS');
    await rejects(
      valid({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }),
      'OVERLAP',
      /"a" and "b"/,
    );
  });

  it('reports a missing file as IO', async () => {
    await rejects(path.join(tmp, 'nope.safetensors'), 'IO');
  });

  // Fuzz: random corruptions of a valid file (bit flips, truncations, header edits) end in a valid result
  // or a SafetensorsError, never another exception.
  it('fuzz: corrupted files give a typed error or a valid result', async () => {
    const entries: STEntry[] = [
      { name: 'w', dtype: 'F32', shape: [4, 3], data: randomData(48, 5) },
      { name: 'b', dtype: 'BF16', shape: [3], data: randomData(6, 6) },
      { name: 'h', dtype: 'F16', shape: [2, 2], data: randomData(8, 7) },
    ];
    const data = Buffer.concat(entries.map((e) => Buffer.from(e.data!)));
    const good = encodeSafetensors(safetensorsHeader(entries, { format: 'pt' }), data);
    const corruption = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(good.length - 1), bit: fc.nat(7) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(good.length) }),
      fc.record({ kind: fc.constant('length' as const), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
      fc.record({ kind: fc.constant('json' as const), value: fc.json() }),
      // Plausible-looking entries with hostile values: huge or negative dims, offsets past the end, overlaps.
      fc.record({
        kind: fc.constant('entries' as const),
        value: fc.dictionary(
          fc.string({ maxLength: 8 }),
          fc.record({
            dtype: fc.constantFrom('F32', 'F16', 'BF16', 'I8', 'x'),
            shape: fc.array(fc.oneof(fc.integer({ min: -2, max: 6 }), fc.constant(2 ** 53), fc.double()), { maxLength: 4 }),
            data_offsets: fc.array(fc.integer({ min: -4, max: 80 }), { maxLength: 3 }),
          }),
          { maxKeys: 4 },
        ),
      }),
    );
    let valid = 0;
    let typed = 0;
    await fc.assert(
      fc.asyncProperty(corruption, async (c) => {
        let bytes: Uint8Array = Uint8Array.from(good);
        if (c.kind === 'flip') bytes[c.at]! ^= 1 << c.bit;
        else if (c.kind === 'truncate') bytes = bytes.subarray(0, c.at);
        else if (c.kind === 'length') new DataView(bytes.buffer).setBigUint64(0, c.value, true);
        else if (c.kind === 'json') bytes = encodeSafetensors(JSON.parse(c.value), data);
        else bytes = encodeSafetensors(c.value, data);
        const p = path.join(tmp, 'fuzz.safetensors');
        writeFileSync(p, bytes);
        try {
          const st = await readSafetensorsHeader(p);
          for (const t of st.tensors.values()) expect((await readTensorBytes(t)).byteLength).toBe(t.size);
          valid++;
        } catch (err) {
          if (!(err instanceof SafetensorsError)) throw err;
          typed++;
        }
      }),
      { numRuns: 400, seed: 42 },
    );
    expect(valid + typed).toBe(400);
    expect(typed).toBeGreaterThan(100);
  });
});

describe('sharded checkpoints', () => {
  const shard = (dir: string, name: string, entries: STEntry[]) => writeSafetensors(path.join(dir, name), entries);
  const t = (name: string, seed: number): STEntry => ({ name, dtype: 'F32', shape: [2], data: randomData(8, seed) });

  function sharded(name: string, weightMap: Record<string, string> | unknown): string {
    const dir = path.join(tmp, name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    shard(dir, 'model-00001-of-00002.safetensors', [t('a', 1), t('b', 2)]);
    shard(dir, 'model-00002-of-00002.safetensors', [t('c', 3)]);
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), typeof weightMap === 'string' ? weightMap : JSON.stringify({ weight_map: weightMap }));
    return dir;
  }
  const checkpointRejects = async (dir: string, code: string, pattern?: RegExp) => {
    const err = await openCheckpoint(dir).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SafetensorsError);
    expect((err as SafetensorsError).code).toBe(code);
    if (pattern) expect((err as Error).message).toMatch(pattern);
  };

  it('reads every shard the index names', async () => {
    const dir = sharded('ok', { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' });
    const ck = await openCheckpoint(dir);
    expect(ck.files.map((f) => path.basename(f))).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect([...ck.tensors.keys()].sort()).toEqual(['a', 'b', 'c']);
    expect(await readTensorBytes(ck.tensors.get('c')!)).toEqual(randomData(8, 3));
  });

  it('rejects an index naming a tensor its shard lacks, a missing shard, or a bad index', async () => {
    await checkpointRejects(sharded('wrong', { a: 'model-00002-of-00002.safetensors' }), 'MISSING_TENSOR', /"a" in model-00002/);
    await checkpointRejects(sharded('missing', { a: 'model-00009-of-00009.safetensors' }), 'IO');
    await checkpointRejects(sharded('badjson', '{"weight_map": '), 'BAD_INDEX', /JSON/);
    await checkpointRejects(sharded('nomap', '{"metadata": {}}'), 'BAD_INDEX', /weight_map/);
  });

  it('rejects shard names that leave the checkpoint directory', async () => {
    for (const bad of ['../model.safetensors', '/etc/passwd', 'sub/model.safetensors', '..', '.', 'a\\b', '']) {
      await checkpointRejects(sharded('escape', { a: bad }), 'BAD_INDEX', /not a file name/);
    }
  });

  it('rejects a tensor present in two shards', async () => {
    const dir = sharded('dup', { a: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' });
    shard(dir, 'model-00002-of-00002.safetensors', [t('c', 3), t('a', 4)]);
    await checkpointRejects(dir, 'DUPLICATE_TENSOR', /"a"/);
  });

  it('says what is missing when there is no checkpoint', async () => {
    const dir = path.join(tmp, 'empty');
    mkdirSync(dir, { recursive: true });
    await checkpointRejects(dir, 'IO', /no model\.safetensors/);
  });
});
