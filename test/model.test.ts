/**
 * The model API on the tiny fixture: batching, caching, streaming, text-only generation and
 * sampling. Exactness against the reference is test/golden.test.ts; here each feature is checked
 * against the plain path it must agree with.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { convertCheckpoint } from '../lib/convert/index.js';
import { loadModel, type PaliGemma } from '../lib/model/paligemma.js';
import { FIXTURE_DIR, imageBytes, manifest, pixelValues } from './helpers/golden.js';

let dir: string;
let model: PaliGemma;
let files: { textPath: string; projectorPath: string };

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-model-'));
  files = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f32' });
  model = await loadModel({ model: files.textPath, projector: files.projectorPath, imageCacheBytes: 0 });
});

afterAll(async () => {
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('describeMany', () => {
  it('gives each item the result describe gives it alone, at any concurrency', async () => {
    // Six items: batches of 5 to 8 rows take the same GEMV path as single rows (native/model/weights.h).
    const cases = [...manifest.cases, ...manifest.cases.slice(0, 2)];
    const items = cases.map((c, i) => ({ image: imageBytes(c.image), prompt: c.prompt, maxTokens: 6 + (c.prompt.length + i) % 5 }));
    const alone = [];
    for (const { image, ...options } of items) alone.push(await model.describe(image, options));
    for (const concurrency of [1, 4, 6]) {
      const batched = await model.describeMany(items, { concurrency });
      expect(batched.map((r) => r.tokens)).toEqual(alone.map((r) => r.tokens));
      expect(batched.map((r) => r.text)).toEqual(alone.map((r) => r.text));
    }
  });

  it('handles sequences that stop at different lengths', async () => {
    const image = { pixelValues: pixelValues('img_a1.png') };
    const r = await model.describeMany([
      { image, maxTokens: 1 },
      { image, maxTokens: 7 },
      { image, maxTokens: 3 },
    ]);
    expect(r.map((x) => x.tokens.length)).toEqual([1, 7, 3]);
    expect(r[0].tokens).toEqual(r[1].tokens.slice(0, 1));
    expect(r[2].tokens).toEqual(r[1].tokens.slice(0, 3));
  });

  it('rejects bad arguments before any work', async () => {
    await expect(model.describeMany([{ image: imageBytes('img_a1.png') }], { concurrency: 0 })).rejects.toThrow(/concurrency/);
    await expect(model.describeMany([{ image: imageBytes('img_a1.png'), maxTokens: -1 }])).rejects.toThrow(/maxTokens/);
    expect(await model.describeMany([])).toEqual([]);
  });
});

describe('image cache', () => {
  it('reuses the vision output for the same pixels and gives the same answer', async () => {
    const files = await convertCheckpoint(FIXTURE_DIR, { outDir: path.join(dir, 'cached'), outType: 'f32' });
    const cached = await loadModel({ model: files.textPath, projector: files.projectorPath });
    try {
      const image = imageBytes('img_a2.jpg');
      const first = await cached.describe(image, { prompt: 'caption en', maxTokens: 5 });
      const second = await cached.describe(image, { prompt: 'answer en what is this?', maxTokens: 5 });
      const again = await cached.describe(image, { prompt: 'caption en', maxTokens: 5 });
      expect(first.timings.imageCacheHit).toBe(false);
      expect(second.timings.imageCacheHit).toBe(true);
      expect(again.timings.imageCacheHit).toBe(true);
      expect(again.tokens).toEqual(first.tokens);
      // A different image misses.
      const other = await cached.describe(imageBytes('img_a1.png'), { maxTokens: 2 });
      expect(other.timings.imageCacheHit).toBe(false);
    } finally {
      await cached.dispose();
    }
  });

  it('is off with imageCacheBytes: 0', async () => {
    const image = imageBytes('img_a2.jpg');
    await model.describe(image, { maxTokens: 1 });
    expect((await model.describe(image, { maxTokens: 1 })).timings.imageCacheHit).toBe(false);
  });
});

describe('streaming', () => {
  it('onToken and stream() yield pieces that make up the text', async () => {
    const image = { pixelValues: pixelValues('img_a2.jpg') };
    const pieces: string[] = [];
    const r = await model.describe(image, { maxTokens: 12, onToken: (p) => pieces.push(p) });
    expect(pieces.join('')).toBe(r.text);
    const streamed: string[] = [];
    for await (const piece of model.stream(image, { maxTokens: 12 })) streamed.push(piece);
    expect(streamed.join('')).toBe(r.text);
  });

  it('leaving a stream early stops its generation and frees the model', async () => {
    const image = { pixelValues: pixelValues('img_a2.jpg') };
    let produced = 0;
    for await (const _ of model.stream(image, { maxTokens: 200, onToken: () => produced++ })) {
      if (produced >= 2) break;
    }
    // The next call runs after the aborted one settled; the abort lands within a decode step.
    const next = await model.describe(image, { maxTokens: 3 });
    expect(next.tokens).toHaveLength(3);
    expect(produced).toBeLessThanOrEqual(4);
  });
});

describe('text-only generation and sampling', () => {
  it('generate() runs raw ids and reports timings', async () => {
    const tokens = [2, 21209, 659, 108];
    const a = await model.generate({ tokens, maxTokens: 5 });
    const b = await model.generate({ tokens, maxTokens: 5 });
    expect(a.tokens).toHaveLength(5);
    expect(b.tokens).toEqual(a.tokens);
    expect(a.timings.promptTokens).toBe(4);
    expect(a.timings.generatedTokens).toBe(5);
    expect(a.timings.prefillMs).toBeGreaterThan(0);
  });

  it('sampling is reproducible with a seed and differs from greedy', async () => {
    const tokens = [2, 21209, 659, 108];
    const greedy = await model.generate({ tokens, maxTokens: 8 });
    const s1 = await model.generate({ tokens, maxTokens: 8, temperature: 5, seed: 7 });
    const s2 = await model.generate({ tokens, maxTokens: 8, temperature: 5, seed: 7 });
    expect(s2.tokens).toEqual(s1.tokens);
    // At temperature 5 over 257k near-uniform logits, matching greedy 8 times is essentially impossible.
    expect(s1.tokens).not.toEqual(greedy.tokens);
    const k1 = await model.generate({ tokens, maxTokens: 8, temperature: 1, topK: 1 });
    expect(k1.tokens).toEqual(greedy.tokens); // top-1 sampling is greedy
  });

  it('rejects bad sampling options', async () => {
    await expect(model.generate({ tokens: [2], temperature: -1 })).rejects.toThrow(/temperature/);
    await expect(model.generate({ tokens: [2], topP: 0 })).rejects.toThrow(/topP/);
    await expect(model.generate({ tokens: [] })).rejects.toThrow(/empty/);
  });
});

describe('thread count', () => {
  // The kernels split rows, columns and elements across the pool differently at each thread count;
  // every value must still be computed in the same order. The prompt is long enough for the
  // row-wise and elementwise kernels to be split (native/model/pooled.h: 16 rows, 4096 elements:
  // here 96 FFN values per row), three images for the vision tower's norms.
  it('does not change any result', async () => {
    const prompt = `answer en ${'what is written on the sign next to the red door? '.repeat(8)}`;
    const c = manifest.cases[0];
    const results = [];
    for (const threads of [1, 3]) {
      const m = await loadModel({ model: files.textPath, projector: files.projectorPath, imageCacheBytes: 0, threads });
      try {
        expect(m.runtime.threads).toBe(threads);
        const e = await m.evaluate({ pixelValues: pixelValues(c.image), prompt, topK: 1 });
        const many = await m.describeMany(manifest.cases.slice(0, 3).map((k) => ({ image: imageBytes(k.image), prompt: k.prompt, maxTokens: 4 })));
        results.push({ e, many });
      } finally {
        await m.dispose();
      }
    }
    const [one, three] = results;
    expect(one.e.inputIds.length).toBeGreaterThan(2 * 4096 / 96);
    expect(three.e.visionOutput).toEqual(one.e.visionOutput);
    expect(three.e.layerOutputs).toEqual(one.e.layerOutputs);
    expect(three.e.lastLogits).toEqual(one.e.lastLogits);
    expect(three.many.map((r) => r.tokens)).toEqual(one.many.map((r) => r.tokens));
  });
});
