/**
 * The step scheduler (lib/model/scheduler.ts) through the model API on the tiny fixture: concurrent
 * calls give exactly the tokens each gives alone while sharing decode steps; a call arriving
 * mid-generation joins at the next step; its prefill, split by layers, alternates with the running
 * calls' decode steps; an aborted call leaves within one step, its KV cache is freed at once and its
 * slot reused; the sequence limits hold. The native calls are observed through a recording subclass
 * of the addon's NativeModel, in the order the native side saw them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

import { convertCheckpoint, type ConvertResult } from '../lib/convert/index.js';
import { PaliGemmaError } from '../lib/errors.js';
import { readGGUF, writeGGUF } from '../lib/gguf/index.js';
import { loadModel, type GenerationResult, type PaliGemma } from '../lib/model/paligemma.js';
import { decodeSegmentation, segmentationDecoderGGUF, SegmentationDecoder } from '../lib/tasks/segmentation.js';
import { FIXTURE_DIR, imageBytes, pixelValues } from './helpers/golden.js';
import { decodes, recordedModel, short, type NativeCall } from './helpers/native-log.js';
import { caught } from './helpers/reliability.js';
import { randomVae } from './helpers/vae.js';

const outcome = (r: GenerationResult) => ({ text: r.text, tokens: r.tokens, stopReason: r.stopReason });

let dir: string;
let files: ConvertResult;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-scheduler-'));
  files = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f32' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('concurrent calls', () => {
  let model: PaliGemma;
  let log: NativeCall[];
  beforeAll(async () => {
    ({ model, log } = await recordedModel(files, { imageCacheBytes: 0 }));
  });
  afterAll(() => model?.dispose());

  /** Six calls: two images, several prompts, greedy and seeded sampling, different lengths. */
  const calls = [
    { image: imageBytes('img_a1.png'), prompt: 'caption en', maxTokens: 30 },
    { image: imageBytes('img_a2.jpg'), prompt: 'answer en what is in the image?', maxTokens: 26 },
    { image: imageBytes('img_a1.png'), prompt: 'detect cat', maxTokens: 28, temperature: 1.5, seed: 3 },
    { image: imageBytes('img_a2.jpg'), prompt: 'caption en', maxTokens: 25, temperature: 0.8, topK: 40, seed: 11 },
    { image: imageBytes('img_a2.jpg'), prompt: 'ocr', maxTokens: 29, temperature: 1, topK: 100, topP: 0.9, seed: 5 },
    { image: imageBytes('img_a1.png'), prompt: 'answer en where?', maxTokens: 27 },
  ];

  it('give exactly the tokens each gives alone, sharing decode steps', async () => {
    const alone: ReturnType<typeof outcome>[] = [];
    let serialDecodes = 0;
    for (const { image, ...options } of calls) {
      const before = decodes(log).length;
      alone.push(outcome(await model.describe(image, options)));
      serialDecodes += decodes(log).length - before;
      expect(decodes(log).slice(before).every((d) => d.sequences.length === 1)).toBe(true);
    }
    // The calls must tell each other apart, or a mix-up would go unnoticed.
    expect(new Set(alone.map((a) => a.tokens.join())).size).toBe(calls.length);

    const start = log.length;
    const together = await Promise.all(calls.map(({ image, ...options }) => model.describe(image, options)));
    together.forEach((r, i) => expect(outcome(r), `call ${i}`).toEqual(alone[i]));
    const steps = decodes(log.slice(start));
    // The calls shared their steps: all six generated together at some point, and the decode rows
    // were the serial run's, in fewer steps.
    expect(Math.max(...steps.map((d) => d.sequences.length))).toBe(calls.length);
    expect(steps.length).toBeLessThan(serialDecodes);
    expect(steps.reduce((n, d) => n + d.sequences.length, 0)).toBe(serialDecodes);
  });

  it('their images go through the vision tower in one batch when they arrive together', async () => {
    const start = log.length;
    const items = calls.slice(0, 4).map(({ image, prompt }) => ({ image, prompt, maxTokens: 3 }));
    const many = await model.describeMany(items, { concurrency: 4 });
    const vision = log.slice(start).filter((c) => c.method === 'encodeImages');
    expect(vision.map((c) => c.images)).toEqual([4]);
    for (const [i, { image, ...options }] of items.entries()) expect(outcome(many[i]!)).toEqual(outcome(await model.describe(image, options)));
  });
});

describe('joining, prefill chunks and leaving', () => {
  let model: PaliGemma;
  let log: NativeCall[];
  let onCall: { fn?: (call: NativeCall) => void };
  let long: ReturnType<typeof outcome>;
  const a1 = { pixelValues: pixelValues('img_a1.png') };
  const a2 = { pixelValues: pixelValues('img_a2.jpg') };
  const LONG = { prompt: 'caption en', maxTokens: 40 };
  const SHORT = { prompt: 'answer en what is in the image?', maxTokens: 6 };
  let shortAlone: ReturnType<typeof outcome>;

  beforeAll(async () => {
    // One layer per prefill chunk: the tiny model's prompt takes two chunks.
    ({ model, log, onCall } = await recordedModel(files, { imageCacheBytes: 0, prefillChunkLayers: 1 }));
    long = outcome(await model.describe(a1, LONG));
    shortAlone = outcome(await model.describe(a2, SHORT));
  });
  afterAll(() => model?.dispose());

  it('a call arriving mid-generation joins at the next step; its prefill chunks alternate with the decode steps', async () => {
    let late: Promise<GenerationResult> | undefined;
    let n = 0;
    const start = log.length;
    const first = await model.describe(a1, {
      ...LONG,
      onToken: () => {
        if (++n === 4) late = model.describe(a2, SHORT);
      },
    });
    const second = await late!;
    expect(outcome(first)).toEqual(long);
    expect(outcome(second)).toEqual(shortAlone);
    const calls = log.slice(start).map(short);
    const arrival = calls.indexOf('encodeImages 1', 1);
    expect(arrival).toBeGreaterThan(0);
    // Before it: the first call alone; from it on: each piece of the newcomer's start between two
    // decode steps of the running call, and it decodes in the very next step after its prefill.
    expect(calls.slice(arrival - 1, arrival + 6)).toEqual([
      'decode 0',
      'encodeImages 1',
      'decode 0',
      'prefill 1',
      'decode 0',
      'continuePrefill 1',
      'decode 0,1',
    ]);
    // It leaves after its last token: its KV cache is freed before the next step.
    const leave = calls.indexOf('releaseSequence 1');
    expect(leave).toBeGreaterThan(arrival);
    expect(calls[leave + 1]).toBe('decode 0');
    expect(model.sequences).toMatchObject({ active: 0, queued: 0, kvBytes: 0 });
  });

  /** Runs the long call on sequence 0 with a second one on sequence 1, aborted by `abortAt`; returns the native calls made meanwhile. */
  async function withAbort(abortAt: (controller: AbortController, call: NativeCall | undefined, tokens: number) => void) {
    const controller = new AbortController();
    let tokens = 0;
    let tokensAfterAbort = 0;
    let late: Promise<GenerationResult> | undefined;
    let n = 0;
    const start = log.length;
    onCall.fn = (call) => abortAt(controller, call, tokens);
    try {
      const first = await model.describe(a1, {
        ...LONG,
        onToken: () => {
          if (++n !== 3) return;
          late = model.describe(a2, {
            ...SHORT,
            maxTokens: 30,
            signal: controller.signal,
            onToken: () => {
              if (controller.signal.aborted) tokensAfterAbort++;
              abortAt(controller, undefined, ++tokens);
            },
          });
          late.catch(() => {}); // awaited below
        },
      });
      expect(outcome(first)).toEqual(long);
    } finally {
      onCall.fn = undefined;
    }
    const err = await caught(() => late!);
    expect(err.name).toBe('AbortError');
    expect(tokensAfterAbort).toBe(0);
    return log.slice(start);
  }

  it('an aborted call leaves at once: its KV cache freed before the next step, no step after', async () => {
    const calls = await withAbort((controller, call, tokens) => {
      if (call === undefined && tokens === 3) controller.abort();
    });
    const leave = calls.findIndex((c) => short(c) === 'releaseSequence 1');
    expect(calls.slice(leave - 1, leave + 2).map(short)).toEqual(['decode 0,1', 'releaseSequence 1', 'decode 0']);
    expect(calls.slice(leave + 1).filter((c) => c.sequences.includes(1))).toEqual([]);
  });

  it('aborted while a step runs, it rejects at once and its KV cache is freed as the step returns', async () => {
    let rejectedDuringStep = false;
    const calls = await withAbort((controller, call, tokens) => {
      if (call?.method === 'decode' && call.sequences.includes(1) && tokens >= 2 && !controller.signal.aborted) {
        controller.abort();
        rejectedDuringStep = true;
      }
    });
    expect(rejectedDuringStep).toBe(true);
    const leave = calls.findIndex((c) => short(c) === 'releaseSequence 1');
    expect(calls.slice(leave - 1, leave + 2).map(short)).toEqual(['decode 0,1', 'releaseSequence 1', 'decode 0']);
  });

  it('aborted during a chunked prefill, the prefill goes no further and the sequence is freed', async () => {
    const calls = (await withAbort((controller, call) => {
      if (call?.method === 'prefill' && call.sequences[0] === 1) controller.abort();
    })).map(short);
    const begun = calls.indexOf('prefill 1');
    expect(calls.slice(begun, begun + 3)).toEqual(['prefill 1', 'releaseSequence 1', 'decode 0']);
    expect(calls).not.toContain('continuePrefill 1');
  });

  it("a freed slot is the next call's", async () => {
    let next: Promise<GenerationResult> | undefined;
    const controller = new AbortController();
    let n = 0;
    const start = log.length;
    const first = model.describe(a1, {
      ...LONG,
      onToken: () => {
        n++;
        if (n === 2) void model.describe(a2, { ...SHORT, maxTokens: 30, signal: controller.signal }).catch(() => {});
        if (n === 8) controller.abort();
        if (n === 9) next = model.describe(a2, SHORT);
      },
    });
    expect(outcome(await first)).toEqual(long);
    expect(outcome(await next!)).toEqual(shortAlone);
    const calls = log.slice(start).map(short);
    expect(calls.filter((c) => c.startsWith('prefill'))).toEqual(['prefill 0', 'prefill 1', 'prefill 1']);
    expect(calls.filter((c) => c.startsWith('releaseSequence'))).toEqual(['releaseSequence 1', 'releaseSequence 1', 'releaseSequence 0']);
  });
});

describe('limits', () => {
  it('at most maxSequences generate at once; the other calls queue, then run with the same results', async () => {
    const { model, log } = await recordedModel(files, { maxSequences: 2, imageCacheBytes: 0 });
    try {
      const image = { pixelValues: pixelValues('img_a2.jpg') };
      const prompts = ['caption en', 'ocr', 'answer en what?', 'detect dog', 'caption fr'];
      const alone: ReturnType<typeof outcome>[] = [];
      for (const prompt of prompts) alone.push(outcome(await model.describe(image, { prompt, maxTokens: 5 })));
      const seen: (typeof model.sequences)[] = [];
      const start = log.length;
      const together = await Promise.all(
        prompts.map((prompt, i) => model.describe(image, { prompt, maxTokens: 5, onToken: () => i === 0 && seen.push(model.sequences) })),
      );
      together.forEach((r, i) => expect(outcome(r)).toEqual(alone[i]));
      expect(seen[0]).toMatchObject({ active: 2, queued: 3, maxSequences: 2 });
      const used = log.slice(start).filter((c) => c.method !== 'encodeImages');
      expect(Math.max(...used.flatMap((c) => c.sequences))).toBe(1);
      expect(Math.max(...decodes(used).map((d) => d.sequences.length))).toBe(2);
    } finally {
      await model.dispose();
    }
  });

  it('the native model has 64 sequences: maxSequences is at most 64, and the 65th call waits for a free one', async () => {
    const err = await caught(() => loadModel({ model: files.textPath, projector: files.projectorPath, maxSequences: 65 }));
    expect(err).toBeInstanceOf(PaliGemmaError);
    expect(err.message).toMatch(/maxSequences must be an integer in 1\.\.64, got 65/);

    const { model, log } = await recordedModel(files, { maxSequences: 64 });
    try {
      const image = { pixelValues: pixelValues('img_a1.png') };
      let seen: typeof model.sequences | undefined;
      const results = await Promise.all(
        Array.from({ length: 66 }, (_, i) => model.describe(image, { maxTokens: 1, onToken: () => i === 0 && (seen = model.sequences) })),
      );
      expect(new Set(results.map((r) => r.tokens.join())).size).toBe(1);
      expect(seen).toMatchObject({ active: 64, queued: 2 });
      const prefills = log.filter((c) => c.method === 'prefill').map((c) => c.sequences[0]!);
      expect(prefills.length).toBe(66);
      expect(new Set(prefills.slice(0, 64)).size).toBe(64);
      expect(Math.max(...prefills)).toBe(63);
      // The 65th call starts on a sequence freed before it.
      const firstRelease = log.findIndex((c) => c.method === 'releaseSequence');
      const sixtyFifth = log.findIndex((c, i) => c.method === 'prefill' && log.slice(0, i + 1).filter((x) => x.method === 'prefill').length === 65);
      expect(firstRelease).toBeGreaterThan(-1);
      expect(firstRelease).toBeLessThan(sixtyFifth);
    } finally {
      await model.dispose();
    }
  });
});

describe('model API additions', () => {
  it('reports the KV cache the sequences hold: positions × layers × 2 × KV heads × head dim × 4 bytes', async () => {
    const gguf = await readGGUF(files.textPath);
    const meta = (key: string) => Number(gguf.metadata.get(`gemma.${key}`)!.value);
    const perPosition = meta('block_count') * 2 * meta('attention.head_count_kv') * meta('attention.key_length') * 4;
    const model = await loadModel({ model: files.textPath, projector: files.projectorPath });
    try {
      expect(model.kvBytesPerPosition).toBe(perPosition);
      const held: number[] = [];
      const r = await model.describe(imageBytes('img_a1.png'), { maxTokens: 4, onToken: () => held.push(model.sequences.kvBytes) });
      const prompt = r.timings.promptTokens;
      // The first token comes from the prefill; each later one from a decode step adding a position.
      expect(held).toEqual([0, 1, 2, 3].map((k) => (prompt + k) * perPosition));
      expect(model.sequences).toEqual({ active: 0, queued: 0, maxSequences: 16, kvBytes: 0 });
      expect(model.files.text.path).toBe(files.textPath);
    } finally {
      await model.dispose();
    }
  });

  it('dispose() rejects queued and generating calls with DISPOSED and leaves no sequence', async () => {
    const model = await loadModel({ model: files.textPath, projector: files.projectorPath, maxSequences: 2 });
    const image = { pixelValues: pixelValues('img_a1.png') };
    let disposing: Promise<void> | undefined;
    const calls = Array.from({ length: 4 }, (_, i) =>
      model.describe(image, { maxTokens: 50, onToken: () => i === 0 && (disposing ??= model.dispose()) }),
    );
    for (const r of await Promise.allSettled(calls)) expect((r as PromiseRejectedResult).reason?.code).toBe('DISPOSED');
    await disposing;
    expect(model.sequences).toMatchObject({ active: 0, queued: 0 });
  });

  it('probeImage() reads the size from the header and refuses as describe() would', async () => {
    const model = await loadModel({ model: files.textPath, projector: files.projectorPath, maxPixels: 1000 });
    try {
      const png = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#808080' } }).png().toBuffer();
      expect(await model.probeImage(png)).toEqual({ width: 30, height: 20 });
      const large = await sharp({ create: { width: 50, height: 21, channels: 3, background: '#808080' } }).png().toBuffer();
      const tooLarge = await caught(() => model.probeImage(large));
      expect(tooLarge.code).toBe('TOO_LARGE');
      expect((await caught(() => model.describe(large))).message).toBe(tooLarge.message);
      expect((await caught(() => model.probeImage(Buffer.from('not an image')))).name).toBe('ImageError');
    } finally {
      await model.dispose();
    }
  });

  it("decodeSegmentation() gives the masks of the model's own mask decoder, or says which file it needs", async () => {
    const decoderPath = path.join(dir, 'decoder.gguf');
    await writeGGUF(decoderPath, segmentationDecoderGGUF(randomVae({ codes: 128, dim: 16, width: 8, upsample: [8, 8, 8, 4] }, 3)));
    const size = { width: 200, height: 100 };
    const text = '<loc0256><loc0100><loc0768><loc0900>' + Array.from({ length: 16 }, (_, i) => `<seg${String(i * 7).padStart(3, '0')}>`).join('') + ' cat';
    const model = await loadModel({ model: files.textPath, projector: files.projectorPath, segmentation: decoderPath });
    const bare = await loadModel({ model: files.textPath, projector: files.projectorPath });
    try {
      const expected = await decodeSegmentation(text, size, await SegmentationDecoder.load(decoderPath));
      expect(expected.segments).toHaveLength(1);
      expect(await model.decodeSegmentation(text, size)).toEqual(expected);
      expect(model.segmentation).toBeInstanceOf(SegmentationDecoder);
      expect(bare.segmentation).toBeUndefined();
      expect((await caught(() => bare.decodeSegmentation(text, size))).code).toBe('NO_SEGMENTATION_DECODER');
    } finally {
      await Promise.all([model.dispose(), bare.dispose()]);
    }
  });
});
