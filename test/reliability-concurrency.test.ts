/**
 * Concurrency and lifetime: many overlapping calls on one model give exactly the serial results,
 * two models in one process do not interfere, dispose() while calls are in flight settles every
 * call cleanly and frees the native memory, and the native handle itself refuses overlapping use.
 *
 * The dispose contract (lib/model/paligemma.ts): calls still queued reject with PaliGemmaError
 * DISPOSED; the running call rejects with DISPOSED at its next native step, or completes normally
 * when it needs no further step; dispose() resolves once every call has settled and the weights
 * are unmapped; any later call rejects with DISPOSED; dispose() is idempotent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { convertCheckpoint, type ConvertResult } from '../lib/convert/index.js';
import { PaliGemmaError } from '../lib/errors.js';
import { locateModelFiles } from '../lib/model/files.js';
import { textSpec } from '../lib/model/native-spec.js';
import { loadModel, type GenerationResult, type ModelImage, type PaliGemma } from '../lib/model/paligemma.js';
import { native } from '../lib/native.js';
import { FIXTURE_DIR, imageBytes, pixelValues } from './helpers/golden.js';
import { caught, isMapped, rewriteGGUF, withTensor } from './helpers/reliability.js';

let dir: string;
let tiny: ConvertResult;
/** The tiny text model with its final norm negated: every logit flips sign, so its greedy text differs. */
let flippedText: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-rel-concurrency-'));
  tiny = await convertCheckpoint(FIXTURE_DIR, { outDir: path.join(dir, 'f32'), outType: 'f32' });
  flippedText = path.join(dir, 'flipped.gguf');
  await rewriteGGUF(tiny.textPath, flippedText, {
    tensors: (t) =>
      withTensor(t, 'output_norm.weight', (w) => {
        const src = w.data as Uint8Array;
        const values = new Float32Array(src.buffer.slice(src.byteOffset, src.byteOffset + src.byteLength));
        return { ...w, data: values.map((v) => -v) };
      }),
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A mix of inputs: encoded PNG and JPEG, ready pixel values, several prompts. */
function requests(): { image: ModelImage; prompt: string }[] {
  return [
    { image: imageBytes('img_a1.png'), prompt: 'caption en' },
    { image: imageBytes('img_a2.jpg'), prompt: 'answer en what is in the image?' },
    { image: { pixelValues: pixelValues('img_a1.png') }, prompt: 'detect cat' },
    { image: imageBytes('img_a2.jpg'), prompt: 'caption en' },
  ];
}

const MAX_TOKENS = 8;
const outcome = (r: GenerationResult) => ({ text: r.text, tokens: r.tokens, stopReason: r.stopReason });

describe('concurrent calls on one model', () => {
  let model: PaliGemma;
  beforeAll(async () => {
    model = await loadModel({ model: tiny.textPath, projector: tiny.projectorPath });
  });
  afterAll(() => model?.dispose());

  it('32 concurrent describe calls all complete with the serial results', async () => {
    const inputs = requests();
    const serial: ReturnType<typeof outcome>[] = [];
    for (const { image, prompt } of inputs) serial.push(outcome(await model.describe(image, { prompt, maxTokens: MAX_TOKENS })));
    // The inputs must tell each other apart, or a mix-up between calls would go unnoticed.
    expect(new Set(serial.map((s) => s.tokens.join())).size).toBe(inputs.length);

    const pieces: string[][] = Array.from({ length: 32 }, () => []);
    const concurrent = await Promise.all(
      Array.from({ length: 32 }, (_, i) => {
        const { image, prompt } = inputs[i % inputs.length];
        return model.describe(image, { prompt, maxTokens: MAX_TOKENS, onToken: (p) => pieces[i].push(p) });
      }),
    );
    concurrent.forEach((r, i) => {
      expect(outcome(r), `call ${i}`).toEqual(serial[i % inputs.length]);
      // Each call's onToken saw its own tokens only.
      expect(pieces[i].join(''), `call ${i}'s streamed pieces`).toBe(r.text);
    });
  });

  it('mixed call kinds (describe, generate, evaluate, stream) interleave without mixing state', async () => {
    const [a] = requests();
    const ids = [2, 21209, 659, 108];
    const alone = {
      describe: outcome(await model.describe(a.image, { prompt: a.prompt, maxTokens: MAX_TOKENS })),
      generate: outcome(await model.generate({ tokens: ids, maxTokens: MAX_TOKENS })),
      evaluate: (await model.evaluate({ image: a.image as Uint8Array, prompt: a.prompt, topK: 3 })).lastLogits,
    };
    const streamed = async () => {
      let text = '';
      for await (const piece of model.stream(a.image, { prompt: a.prompt, maxTokens: MAX_TOKENS })) text += piece;
      return text;
    };
    const [d1, g1, e1, s1, g2, d2] = await Promise.all([
      model.describe(a.image, { prompt: a.prompt, maxTokens: MAX_TOKENS }),
      model.generate({ tokens: ids, maxTokens: MAX_TOKENS }),
      model.evaluate({ image: a.image as Uint8Array, prompt: a.prompt, topK: 3 }),
      streamed(),
      model.generate({ tokens: ids, maxTokens: MAX_TOKENS }),
      model.describe(a.image, { prompt: a.prompt, maxTokens: MAX_TOKENS }),
    ]);
    expect(outcome(d1)).toEqual(alone.describe);
    expect(outcome(d2)).toEqual(alone.describe);
    expect(outcome(g1)).toEqual(alone.generate);
    expect(outcome(g2)).toEqual(alone.generate);
    expect(e1.lastLogits).toEqual(alone.evaluate);
    expect(s1).toBe(alone.describe.text);
  });

  it('a failing call in the queue does not disturb the calls around it', async () => {
    const [a] = requests();
    const expected = outcome(await model.describe(a.image, { prompt: a.prompt, maxTokens: MAX_TOKENS }));
    const results = await Promise.allSettled([
      model.describe(a.image, { prompt: a.prompt, maxTokens: MAX_TOKENS }),
      model.describe(Buffer.from('not an image'), { maxTokens: MAX_TOKENS }),
      model.generate({ tokens: [2, -5] }),
      model.describe(a.image, { prompt: a.prompt, maxTokens: MAX_TOKENS }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    for (const i of [0, 3]) expect(outcome((results[i] as PromiseFulfilledResult<GenerationResult>).value)).toEqual(expected);
  });
});

describe('two models in one process', () => {
  it('interleaved calls give each model its own results', async () => {
    const a = await loadModel({ model: tiny.textPath, projector: tiny.projectorPath });
    const b = await loadModel({ model: flippedText, projector: tiny.projectorPath });
    try {
      const inputs = requests().slice(0, 2);
      const alone = { a: [] as ReturnType<typeof outcome>[], b: [] as ReturnType<typeof outcome>[] };
      for (const { image, prompt } of inputs) {
        alone.a.push(outcome(await a.describe(image, { prompt, maxTokens: MAX_TOKENS })));
        alone.b.push(outcome(await b.describe(image, { prompt, maxTokens: MAX_TOKENS })));
      }
      // The models must disagree, or interference between them could not show.
      for (let i = 0; i < inputs.length; i++) expect(alone.a[i].tokens).not.toEqual(alone.b[i].tokens);

      const calls = Array.from({ length: 16 }, (_, i) => {
        const { image, prompt } = inputs[(i >> 1) % inputs.length];
        return { model: i % 2 === 0 ? 'a' : 'b', input: (i >> 1) % inputs.length, run: (i % 2 === 0 ? a : b).describe(image, { prompt, maxTokens: MAX_TOKENS }) } as const;
      });
      for (const c of calls) expect(outcome(await c.run), `${c.model} on input ${c.input}`).toEqual(alone[c.model][c.input]);
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});

describe('dispose()', () => {
  /** A private copy of the model files, so /proc/self/maps shows exactly this model's mappings. */
  function privateCopy(name: string): { model: string; projector: string } {
    const model = path.join(dir, `${name}.gguf`);
    const projector = path.join(dir, `mmproj-${name}.gguf`);
    copyFileSync(tiny.textPath, model);
    copyFileSync(tiny.projectorPath, projector);
    return { model, projector };
  }

  it('while calls are in flight: the running and queued calls reject DISPOSED, the weights are unmapped', async () => {
    const files = privateCopy('in-flight');
    const model = await loadModel(files);
    expect(isMapped(files.model) && isMapped(files.projector)).toBe(true);
    const image = imageBytes('img_a1.png');

    let disposing: Promise<void> | undefined;
    let disposeStarted!: () => void;
    const started = new Promise<void>((resolve) => (disposeStarted = resolve));
    let tokensAfterDispose = 0;
    const running = model.describe(image, {
      maxTokens: 200,
      onToken: () => {
        if (disposing) tokensAfterDispose++;
        else {
          disposing = model.dispose(); // dispose from inside the call, while it is mid-generation
          disposeStarted();
        }
      },
    });
    const queued = Array.from({ length: 4 }, () => model.describe(image, { maxTokens: 200 }));
    const settled = Promise.allSettled([running, ...queued]);
    await started;
    await model.dispose(); // a second caller must wait for the same release
    expect(isMapped(files.model) || isMapped(files.projector), 'unmapped when the second dispose() resolves').toBe(false);
    await disposing;
    for (const s of await settled) {
      expect(s.status).toBe('rejected');
      const err = (s as PromiseRejectedResult).reason;
      expect(err).toBeInstanceOf(PaliGemmaError);
      expect(err.code).toBe('DISPOSED');
    }
    // The running call stopped at its next step: no token reached the caller after dispose().
    expect(tokensAfterDispose).toBe(0);
    // Native memory released: the files are unmapped and the thread pool is gone.
    expect(isMapped(files.model) || isMapped(files.projector)).toBe(false);
    expect(model.runtime.threads).toBe(0);

    const after = await caught(() => model.describe(image));
    expect(after).toBeInstanceOf(PaliGemmaError);
    expect(after.code).toBe('DISPOSED');
    expect(after.message).toMatch(/disposed.*load it again/);
    for (const call of [() => model.generate({ tokens: [2] }), () => model.evaluate({ prompt: 'x' }), () => model.describeMany([{ image }])])
      expect((await caught(call)).code).toBe('DISPOSED');
    await model.dispose(); // a second dispose is a no-op
  });

  it('a running call that needs no further step completes; dispose() waits for it', async () => {
    const files = privateCopy('last-step');
    const model = await loadModel(files);
    let disposing: Promise<void> | undefined;
    let n = 0;
    const r = await model.describe(imageBytes('img_a1.png'), {
      maxTokens: 3,
      onToken: () => {
        if (++n === 3) disposing = model.dispose(); // the last token: nothing left to run
      },
    });
    expect(r.tokens.length).toBe(3);
    expect(isMapped(files.model)).toBe(true); // dispose() has not freed anything under the call
    await disposing;
    expect(isMapped(files.model)).toBe(false);
  });

  it('when idle: frees at once; every later call rejects', async () => {
    const files = privateCopy('idle');
    const model = await loadModel(files);
    await model.describe(imageBytes('img_a2.jpg'), { maxTokens: 2 });
    await Promise.all([model.dispose(), model.dispose()]);
    expect(isMapped(files.model) || isMapped(files.projector)).toBe(false);
    expect((await caught(() => model.describe(imageBytes('img_a2.jpg')))).code).toBe('DISPOSED');
  });
});

describe('dispose() right after loadModel()', () => {
  it('returns promptly (20 times in a child process with a deadline)', () => {
    // The native thread pool's workers may not have started yet when the model is disposed; the
    // child runs under a deadline because a hang here blocks the JS thread, and with it vitest.
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `const { loadModel } = await import(${JSON.stringify(pathToFileURL(path.resolve('lib/model/paligemma.ts')).href)});
         for (let i = 0; i < 20; i++) await (await loadModel({ model: process.env.MODEL })).dispose();
         console.log('disposed 20');`,
      ],
      { env: { ...process.env, MODEL: tiny.textPath }, encoding: 'utf8', timeout: 30_000 },
    );
    expect(child.signal, `the child hung in dispose() and was killed; stderr: ${child.stderr}`).toBeNull();
    expect(child.stdout).toContain('disposed 20');
  });
});

describe('the native handle', () => {
  /** A bare NativeModel of the tiny text model, as loadModel builds it. */
  async function bareHandle() {
    const files = await locateModelFiles({ model: tiny.textPath, requireProjector: false });
    return new native.NativeModel({ text: textSpec(files.text) });
  }

  it('refuses a call while busy (a thrown Error, not a crash), then works again', async () => {
    const h = await bareHandle();
    const ids = Int32Array.of(2, 21209, 659, 108);
    const first = h.prefill(0, null, ids);
    expect(() => h.prefill(0, null, ids)).toThrow(/busy/);
    expect(() => h.prefill(1, null, ids)).toThrow(/busy/);
    expect(() => h.releaseSequences(0)).toThrow(/busy/);
    const { logits } = await first;
    expect(logits.length).toBe(257216);
    const next = await h.decode(Int32Array.of(0), Int32Array.of(5));
    expect(next.length).toBe(257216);
    expect(() => h.decode(Int32Array.of(3), Int32Array.of(5))).toThrow(/no prefill/);
    h.dispose();
  });

  it('dispose() while a job runs: the job completes, then memory is freed and calls throw', async () => {
    const h = await bareHandle();
    const ids = Int32Array.of(2, 21209, 659, 108);
    const alone = (await h.prefill(0, null, ids)).logits;
    const running = h.prefill(0, null, ids);
    h.dispose(); // freed only when the job returns (ASan would flag a use after free here)
    expect((await running).logits).toEqual(alone);
    expect(h.threads).toBe(0);
    expect(() => h.prefill(0, null, ids)).toThrow(/disposed/);
    expect(() => h.decode(Int32Array.of(0), Int32Array.of(5))).toThrow(/disposed/);
    h.dispose();
  });
});
