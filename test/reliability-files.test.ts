/**
 * Model files that change on disk under a loaded model. Cut short, the next call used to die of
 * SIGBUS (the text model; the projector on an image not in the cache). Now every call first checks
 * the files it reads (size and modification time of the mapped file) and fails with ModelFilesError
 * MODEL_FILE_CHANGED naming the file; a file cut short *during* a call faults in a pool task, which
 * the pool's SIGBUS guard stops (native/fault_guard.h), and the call fails the same way. Each case
 * runs in a child process: the old behaviour killed the process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { convertCheckpoint, type ConvertResult } from '../lib/convert/index.js';
import { loadTestAddon } from '../lib/native.js';
import { FIXTURE_DIR } from './helpers/golden.js';
import { lastJson, projectModule, runScript } from './helpers/child.js';

let dir: string;
let tiny: ConvertResult;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-rel-files-'));
  tiny = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f32' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Failure {
  name: string;
  code?: string;
  path?: string;
  message: string;
}

/**
 * Runs `body` in a child process with copies of the tiny model (`text`, `projector`), `loadModel`,
 * `image(i)` (distinct pixel values) and `attempt(call)` (the call's result, or its error as a
 * Failure) in scope; `body` ends by returning a JSON-able value, which this resolves to.
 */
async function inChild<T>(name: string, body: string, env: Record<string, string> = {}): Promise<T> {
  const script = `
    import { copyFileSync, readFileSync, renameSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
    const { loadModel } = await import(${JSON.stringify(projectModule('lib/model/paligemma.ts'))});
    const text = process.env.DIR + '/' + process.env.NAME + '-text.gguf', projector = process.env.DIR + '/' + process.env.NAME + '-mmproj.gguf';
    copyFileSync(process.env.TEXT, text);
    copyFileSync(process.env.PROJECTOR, projector);
    const image = (i) => ({ pixelValues: new Float32Array(3 * 56 * 56).fill(i / 10) });
    const attempt = async (call) => {
      try {
        const r = await call();
        return { ok: r.text ?? true };
      } catch (e) {
        return { name: e.name, code: e.code, path: e.path, message: e.message };
      }
    };
    const run = async () => { ${body} };
    console.log(JSON.stringify(await run()));
  `;
  const r = await runScript(script, { DIR: dir, NAME: name, TEXT: tiny.textPath, PROJECTOR: tiny.projectorPath, ...env });
  expect(r.signal, `${name}: ${r.stderr}`).toBeNull();
  expect(r.status, `${name}: ${r.stderr}`).toBe(0);
  return lastJson<T>(r);
}

const changed = (file: string, how: RegExp) =>
  expect.objectContaining({ name: 'ModelFilesError', code: 'MODEL_FILE_CHANGED', path: file, message: expect.stringMatching(how) });

describe('a model file changed between calls', () => {
  it('the text model cut short: the next calls fail with MODEL_FILE_CHANGED naming it', async () => {
    const r = await inChild<{ before: unknown; after: Failure[]; text: string }>('text-cut', `
      const model = await loadModel({ model: text, projector });
      const before = await attempt(() => model.describe(image(1), { maxTokens: 4 }));
      truncateSync(text, statSync(text).size / 2);
      const after = [
        await attempt(() => model.describe(image(1), { maxTokens: 4 })),
        await attempt(() => model.generate({ tokens: [2, 21209, 659, 108], maxTokens: 2 })),
        await attempt(() => model.evaluate({ prompt: 'cat' })),
      ];
      await model.dispose();
      return { before, after, text };
    `);
    expect(r.before).toHaveProperty('ok');
    for (const failure of r.after) expect(failure).toEqual(changed(r.text, /^.*: the file changed size from \d+ to \d+ bytes since the model was loaded; load the model again/));
  });

  it('the projector cut short: an image in the cache still works, a new image fails naming the projector', async () => {
    const r = await inChild<{ cached: unknown; uncached: Failure; projector: string }>('projector-cut', `
      const model = await loadModel({ model: text, projector });
      await model.describe(image(1), { maxTokens: 2 });
      truncateSync(projector, 4096);
      const cached = await attempt(() => model.describe(image(1), { maxTokens: 2 }));
      const uncached = await attempt(() => model.describe(image(2), { maxTokens: 2 }));
      await model.dispose();
      return { cached, uncached, projector };
    `);
    expect(r.cached).toHaveProperty('ok');
    expect(r.uncached).toEqual(changed(r.projector, /changed size from \d+ to 4096 bytes/));
  });

  it('a file rewritten in place is refused; one renamed over or deleted is no change (the map keeps its data)', async () => {
    const r = await inChild<{ rewritten: Failure; replaced: unknown; deleted: unknown; text: string }>('rewrite', `
      const bytes = readFileSync(process.env.TEXT);
      const first = await loadModel({ model: text });
      writeFileSync(text, bytes); // the same bytes, written again: the model cannot know
      utimesSync(text, new Date(), new Date(Date.now() + 5000));
      const rewritten = await attempt(() => first.generate({ tokens: [2, 21209], maxTokens: 2 }));
      await first.dispose();
      const second = await loadModel({ model: text });
      writeFileSync(text + '.new', bytes);
      renameSync(text + '.new', text);
      const replaced = await attempt(() => second.generate({ tokens: [2, 21209], maxTokens: 2 }));
      rmSync(text);
      const deleted = await attempt(() => second.generate({ tokens: [2, 21209], maxTokens: 2 }));
      await second.dispose();
      return { rewritten, replaced, deleted, text };
    `);
    expect(r.rewritten).toEqual(changed(r.text, /the file was modified since the model was loaded/));
    expect(r.replaced).toHaveProperty('ok');
    expect(r.deleted).toHaveProperty('ok');
  });

  // Root may lock any amount; others need a memlock limit above the tiny model's 56 MB.
  it('with lockMemory: true, the model runs and a cut is still a typed error', async () => {
    const r = await inChild<{ loaded: unknown; after?: Failure; text: string }>('locked', `
      let model;
      const loaded = await attempt(async () => (model = await loadModel({ model: text, lockMemory: true })));
      if (!model) return { loaded, text };
      await model.generate({ tokens: [2, 21209], maxTokens: 2 });
      truncateSync(text, 4096);
      const after = await attempt(() => model.generate({ tokens: [2, 21209], maxTokens: 2 }));
      await model.dispose();
      return { loaded, after, text };
    `);
    if (!('ok' in (r.loaded as object))) {
      expect(r.loaded).toMatchObject({ name: 'ModelFilesError', code: 'LOCK_FAILED' }); // not allowed to lock here
      return;
    }
    expect(r.after).toEqual(changed(r.text, /changed size/));
  });
});

describe('a model file cut short during calls', () => {
  it('20 files cut at random moments of describe(): each call succeeds or fails with MODEL_FILE_CHANGED, the process lives', async () => {
    const r = await inChild<{ outcomes: (string | Failure)[]; text: string }>('cut-during', `
      const outcomes = [];
      for (let i = 0; i < 20; i++) {
        copyFileSync(process.env.TEXT, text);
        const model = await loadModel({ model: text, projector, imageCacheBytes: 0 });
        const call = attempt(() => model.describe(image(i), { maxTokens: 30 }));
        setTimeout(() => truncateSync(text, statSync(text).size / 2), Math.random() * 20);
        const r = await call;
        outcomes.push('ok' in r ? 'ok' : r);
        await new Promise((resolve) => setTimeout(resolve, 25)); // the cut has happened
        await model.dispose();
      }
      return { outcomes, text };
    `);
    for (const outcome of r.outcomes) if (outcome !== 'ok') expect(outcome).toEqual(changed(r.text, /changed size from \d+ to \d+ bytes (during the call|since the model was loaded)/));
  });

  it.skipIf(process.platform === 'win32')('the pool stops a task that faults on a map cut short, on the calling thread and on its workers, and recovers', async () => {
    const test = loadTestAddon();
    for (const threads of [1, 4]) {
      const file = path.join(dir, `map-${threads}.bin`);
      writeFileSync(file, Buffer.alloc(8 << 20, 7));
      const r = await test.testTruncatedMapAsync(file, threads);
      expect(r, `threads ${threads}`).toEqual({
        faulted: true,
        tasksAfter: 8,
        code: 'MODEL_FILE_CHANGED',
        message: expect.stringMatching(/^the file changed size from 8388608 to 4194304 bytes during the call/),
      });
    }
  });
});
