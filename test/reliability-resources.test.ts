/**
 * Memory a call takes is bounded by what it asks for, not by what a file declares: the KV cache is
 * sized by the sequence's need (a GGUF declaring a context of 2^30 used to fail every describe with
 * a bare std::bad_alloc, and describeMany with 64 sequences too), evaluate() keeps logits in bounded
 * form (it used to hold rows × 257216 floats natively and again in JS: 4 GB for a long prompt), and
 * a buffer beyond the machine's memory fails as a typed OUT_OF_MEMORY before it is allocated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { convertCheckpoint, type ConvertResult } from '../lib/convert/index.js';
import { PaliGemmaError } from '../lib/errors.js';
import { locateModelFiles } from '../lib/model/files.js';
import { textSpec } from '../lib/model/native-spec.js';
import { loadModel, type PaliGemma } from '../lib/model/paligemma.js';
import { topK } from '../lib/model/sampling.js';
import { native, type NativeModel } from '../lib/native.js';
import { FIXTURE_DIR, pixelValues } from './helpers/golden.js';
import { lastJson, projectModule, runScript } from './helpers/child.js';
import { caught, rewriteGGUF } from './helpers/reliability.js';

let dir: string;
let tiny: ConvertResult;
let hugeContext: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-rel-resources-'));
  tiny = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f32' });
  hugeContext = path.join(dir, 'context-2e30.gguf');
  await rewriteGGUF(tiny.textPath, hugeContext, { metadata: (m) => m.set('gemma.context_length', { type: 'u32', value: 2 ** 30 }) });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The tiny model's KV cache per position: 2 layers × (keys + values) × 1 KV head × 24 dims × 4 bytes. */
const KV_BYTES_PER_POSITION = 2 * 2 * 24 * 4;

describe('a file that declares a huge context length', () => {
  let model: PaliGemma;
  beforeAll(async () => {
    model = await loadModel({ model: hugeContext, projector: tiny.projectorPath });
  });
  afterAll(() => model?.dispose());

  it('loads, and describe() works: the KV cache is sized by the call, not by 2^30 positions', async () => {
    expect(model.contextLength).toBe(2 ** 30);
    const image = { pixelValues: pixelValues('img_a1.png') };
    const r = await model.describe(image, { maxTokens: 6 });
    expect(r.tokens.length + (r.stopReason === 'eos' ? 1 : 0)).toBeGreaterThan(0);
    const small = await loadModel({ model: tiny.textPath, projector: tiny.projectorPath });
    try {
      expect((await small.describe(image, { maxTokens: 6 })).tokens).toEqual(r.tokens);
    } finally {
      await small.dispose();
    }
  });

  it('describeMany with 64 sequences at once works', async () => {
    const items = Array.from({ length: 64 }, (_, i) => ({ image: { pixelValues: pixelValues(i % 2 ? 'img_a1.png' : 'img_a2.jpg') }, maxTokens: 2 + (i % 4) }));
    const results = await model.describeMany(items, { concurrency: 64 });
    expect(results).toHaveLength(64);
    // Items 0 and 2: the same image, 2 and 4 tokens.
    expect(results[0]!.tokens).toEqual(results[2]!.tokens.slice(0, results[0]!.tokens.length));
  });

  it('a declared context of 2^40 is used as 2^30, the most positions a sequence can have', async () => {
    const file = path.join(dir, 'context-2e40.gguf');
    await rewriteGGUF(tiny.textPath, file, { metadata: (m) => m.set('gemma.context_length', { type: 'u64', value: 2n ** 40n }) });
    const m = await loadModel({ model: file });
    try {
      expect(m.contextLength).toBe(2 ** 30);
      expect((await m.generate({ tokens: [2, 21209, 659, 108], maxTokens: 3 })).tokens.length).toBeGreaterThan(0);
    } finally {
      await m.dispose();
    }
  });
});

describe('the native KV cache', () => {
  let handle: NativeModel;
  beforeAll(async () => {
    const files = await locateModelFiles({ model: hugeContext, requireProjector: false });
    handle = new native.NativeModel({ text: textSpec(files.text), threads: 2 });
  });
  afterAll(() => handle?.dispose());
  const prompt = Int32Array.of(2, 21209, 659, 108, 1000, 2000, 3000, 4000, 5000, 6000);

  /** Greedy ids of `steps` decode steps of sequence `seq`, from its prefill's logits. */
  async function greedy(seq: number, first: Float32Array, steps: number): Promise<number[]> {
    const ids: number[] = [];
    let logits = first;
    for (let i = 0; i < steps; i++) {
      ids.push(topK(logits, 1).ids[0]!);
      logits = await handle.decode(Int32Array.of(seq), Int32Array.of(ids.at(-1)!));
    }
    return ids;
  }

  it('holds what the sequence needs, grows by doubling, and gives the same results as one sized up front', async () => {
    const grown = await handle.prefill(0, null, prompt);
    expect(handle.kvCacheBytes(0)).toBe(10 * KV_BYTES_PER_POSITION);
    const sizes: number[] = [];
    const ids: number[] = [];
    let logits = grown.logits;
    for (let i = 0; i < 25; i++) {
      ids.push(topK(logits, 1).ids[0]!);
      logits = await handle.decode(Int32Array.of(0), Int32Array.of(ids.at(-1)!));
      sizes.push(handle.kvCacheBytes(0) / KV_BYTES_PER_POSITION);
    }
    // 10 positions, then 20 at the 11th, 40 at the 21st: doubling, so copying stays below the final size.
    expect([...new Set(sizes)]).toEqual([20, 40]);
    const sized = await handle.prefill(1, null, prompt, { capacity: 64 });
    expect(handle.kvCacheBytes(1)).toBe(64 * KV_BYTES_PER_POSITION);
    expect(await greedy(1, sized.logits, 25)).toEqual(ids);
    expect(handle.kvCacheBytes(1)).toBe(64 * KV_BYTES_PER_POSITION);
    expect(handle.kvCacheBytes()).toBe((40 + 64) * KV_BYTES_PER_POSITION);
    handle.releaseSequences(0);
    expect(handle.kvCacheBytes()).toBe(0);
  });

  it('a cache beyond the machine\'s memory is a typed OUT_OF_MEMORY naming it, before any allocation', async () => {
    const err = await caught(() => handle.prefill(0, null, prompt, { capacity: 2 ** 30 }));
    expect(err).toBeInstanceOf(PaliGemmaError);
    expect(err.code).toBe('OUT_OF_MEMORY');
    expect(err.message).toMatch(/out of memory: a KV cache of 1073741824 positions needs 384\.0 GiB, more than the .* one buffer may take/);
    expect(handle.kvCacheBytes(0)).toBe(0);
    // The handle goes on.
    expect((await handle.prefill(0, null, prompt)).logits).toHaveLength(257216);
  });

  it('whole logit rows are bounded (opts.topK gives every row\'s best instead)', async () => {
    const long = new Int32Array(300).fill(2000);
    expect(() => handle.prefill(0, null, long, { logitsRows: 300 })).toThrow(/opts\.logitsRows of 300 rows of 257216 logits exceeds the limit of 260 rows; .*opts\.topK/);
    const r = await handle.prefill(0, null, long, { logitsRows: 2, topK: 5 });
    expect(r.logits).toHaveLength(2 * 257216);
    expect(r.topIds).toHaveLength(300 * 5);
    expect(r.topLogits).toHaveLength(300 * 5);
  });

  it('top-k of every row, selected natively, is what a full sort of the row gives', async () => {
    const ids = Int32Array.from({ length: 40 }, (_, i) => (i * 7919) % 257216);
    const full = await handle.prefill(0, null, ids, { logitsRows: 40 });
    const top = await handle.prefill(0, null, ids, { logitsRows: 3, topK: 12 });
    expect(top.logits).toEqual(full.logits.subarray(37 * 257216));
    for (let row = 0; row < 40; row++) {
      const expected = topK(full.logits.subarray(row * 257216, (row + 1) * 257216), 12);
      expect(top.topIds!.subarray(row * 12, (row + 1) * 12), `row ${row}`).toEqual(expected.ids);
      expect(top.topLogits!.subarray(row * 12, (row + 1) * 12), `row ${row}`).toEqual(expected.logits);
    }
  });
});

// Not under AddressSanitizer (scripts/asan.sh): its quarantine keeps freed memory resident.
describe.skipIf(/asan/.test(process.env.LD_PRELOAD ?? ''))('evaluate() on a long prompt (not under ASan)', () => {
  it('keeps logits bounded: peak memory grows by far less than rows × vocab floats (child process)', async () => {
    // 1900 rows × 257216 floats would be 1.9 GB natively and again in JS (4 GB peak before).
    const script = `
      import { readFileSync } from 'node:fs';
      const { loadModel } = await import(${JSON.stringify(projectModule('lib/model/paligemma.ts'))});
      const peak = () => Number(/VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      const model = await loadModel({ model: process.env.MODEL });
      await model.evaluate({ prompt: 'cat', topK: 3 });
      const before = peak();
      const e = await model.evaluate({ prompt: 'cat '.repeat(1900), topK: 3 });
      console.log(JSON.stringify({ grew: peak() - before, rows: e.topk.length, last: e.lastLogits.length }));
      await model.dispose();
    `;
    const r = await runScript(script, { MODEL: tiny.textPath }, 300_000);
    expect(r.status, r.stderr).toBe(0);
    const out = lastJson<{ grew: number; rows: number; last: number }>(r);
    expect(out.rows).toBeGreaterThan(1900);
    expect(out.last).toBe(257216);
    expect(out.grew).toBeLessThan(400 * 2 ** 20);
  }, 320_000);
});
