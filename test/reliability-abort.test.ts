/**
 * Aborting: an AbortSignal stops generation within one decode step, the call rejects with the
 * signal's reason (an AbortError for a plain abort()), and the model stays usable — the next call
 * gives exactly the result it gave before. An already-aborted signal is refused before any work.
 * Native calls are watched to count the decode steps that start after abort().
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { convertCheckpoint } from '../lib/convert/index.js';
import { loadModel, type GenerationResult, type PaliGemma } from '../lib/model/paligemma.js';
import { FIXTURE_DIR, imageBytes } from './helpers/golden.js';
import { caught, watchNativeModel, type NativeWatch } from './helpers/reliability.js';

let dir: string;
let model: PaliGemma;
let watch: NativeWatch;
/** What an unaborted call gives; every test checks the model still gives it after an abort. */
let baseline: { text: string; tokens: number[] };

const image = imageBytes('img_a1.png');
const LONG = 60; // far more tokens than any test lets run
const REFERENCE = { prompt: 'caption en', maxTokens: 10 };
const outcome = (r: GenerationResult) => ({ text: r.text, tokens: r.tokens });

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-rel-abort-'));
  const files = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f32' });
  watch = watchNativeModel(); // records the native calls of the model loaded under it
  model = await loadModel({ model: files.textPath, projector: files.projectorPath });
  baseline = outcome(await model.describe(image, REFERENCE));
  expect(baseline.tokens.length).toBe(10);
});
afterAll(async () => {
  watch.restore();
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** The model still gives the result it gave before any abort. */
async function expectStillUsable(): Promise<void> {
  expect(outcome(await model.describe(image, REFERENCE))).toEqual(baseline);
}

/** The error of a plain `controller.abort()`. */
function expectAbortError(err: Error): void {
  expect(err.name).toBe('AbortError');
  expect(err).toBeInstanceOf(DOMException);
}

describe('AbortSignal', () => {
  it('abort() from onToken: no token and no decode step after it', async () => {
    const controller = new AbortController();
    let tokens = 0;
    let tokensAfterAbort = 0;
    let callsAtAbort = 0;
    const err = await caught(() =>
      model.describe(image, {
        maxTokens: LONG,
        signal: controller.signal,
        onToken: () => {
          if (controller.signal.aborted) tokensAfterAbort++;
          else if (++tokens === 3) {
            controller.abort();
            callsAtAbort = watch.calls.length;
          }
        },
      }),
    );
    expectAbortError(err);
    expect(tokensAfterAbort).toBe(0);
    expect(watch.calls.slice(callsAtAbort)).toEqual([]);
    await expectStillUsable();
  });

  it('abort() from outside while a decode step runs: that step finishes, no further one starts', async () => {
    const controller = new AbortController();
    let tokensAfterAbort = 0;
    let callsAtAbort = -1;
    let first = true;
    const err = await caught(() =>
      model.describe(image, {
        maxTokens: LONG,
        signal: controller.signal,
        onToken: () => {
          if (controller.signal.aborted) tokensAfterAbort++;
          if (!first) return;
          first = false;
          // The next macrotask runs while the native decode of the next token is in flight.
          setTimeout(() => {
            controller.abort();
            callsAtAbort = watch.calls.length;
          }, 0);
        },
      }),
    );
    expectAbortError(err);
    expect(callsAtAbort).toBeGreaterThan(0);
    // At most the step in flight when abort() came delivers its token; no decode starts after.
    expect(tokensAfterAbort).toBeLessThanOrEqual(1);
    expect(watch.calls.slice(callsAtAbort).filter((c) => c === 'decode')).toEqual([]);
    await expectStillUsable();
  });

  it('rejects with the reason given to abort(reason)', async () => {
    const controller = new AbortController();
    const reason = new Error('user closed the window');
    const err = await caught(() =>
      model.describe(image, { maxTokens: LONG, signal: controller.signal, onToken: () => controller.abort(reason) }),
    );
    expect(err).toBe(reason);
    await expectStillUsable();
  });

  it('an already-aborted signal is refused before any native work', async () => {
    const before = watch.calls.length;
    for (const call of [
      () => model.describe(image, { signal: AbortSignal.abort() }),
      () => model.generate({ tokens: [2, 21209, 659, 108], signal: AbortSignal.abort() }),
      () => model.describeMany([{ image }], { signal: AbortSignal.abort() }),
    ])
      expectAbortError(await caught(call));
    expect(watch.calls.slice(before)).toEqual([]);
    await expectStillUsable();
  });

  it('a call aborted while it waits in the queue never runs; the call ahead is unaffected', async () => {
    const controller = new AbortController();
    const ahead = model.describe(image, REFERENCE);
    const queued = model.describe(image, { maxTokens: LONG, signal: controller.signal });
    const before = watch.calls.length;
    controller.abort();
    expect(outcome(await ahead)).toEqual(baseline);
    const ranAhead = watch.calls.length;
    expectAbortError(await caught(() => queued));
    expect(watch.calls.length, 'the aborted call made no native call').toBe(ranAhead);
    expect(ranAhead).toBeGreaterThan(before);
    await expectStillUsable();
  });

  it('text-only generate() and stream() abort the same way', async () => {
    const ids = [2, 21209, 659, 108];
    const generated = outcome(await model.generate({ tokens: ids, maxTokens: 8 }));
    const controller = new AbortController();
    let n = 0;
    const err = await caught(() =>
      model.generate({ tokens: ids, maxTokens: LONG, signal: controller.signal, onToken: () => ++n === 2 && controller.abort() }),
    );
    expectAbortError(err);
    expect(n).toBe(2);
    expect(outcome(await model.generate({ tokens: ids, maxTokens: 8 }))).toEqual(generated);

    const streaming = new AbortController();
    const pieces: string[] = [];
    const streamErr = await caught(async () => {
      for await (const piece of model.stream(image, { maxTokens: LONG, signal: streaming.signal })) {
        pieces.push(piece);
        if (pieces.length === 2) streaming.abort();
      }
    });
    expectAbortError(streamErr);
    expect(pieces.length).toBeGreaterThanOrEqual(2);
    expect(pieces.length).toBeLessThan(LONG);
    await expectStillUsable();
  });

  it('describeMany() aborts the whole batch and stays usable', async () => {
    const controller = new AbortController();
    let n = 0;
    const err = await caught(() =>
      model.describeMany(
        [
          { image, maxTokens: LONG, onToken: () => ++n === 3 && controller.abort() },
          { image: imageBytes('img_a2.jpg'), maxTokens: LONG },
        ],
        { signal: controller.signal },
      ),
    );
    expectAbortError(err);
    await expectStillUsable();
  });
});
