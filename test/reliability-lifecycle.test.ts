/**
 * Lifecycles and environments that used to take the whole process down, each in a child process (an
 * abort there fails the test, not the test runner):
 *   - Workers terminated while describe() runs, as Electron reloads and worker pools do: 2 runs in 3
 *     aborted ("terminate called after throwing an instance of 'Napi::Error'");
 *   - a model asking for more threads than the process may start (a thread or address-space limit):
 *     an untyped error, with the threads already started left running on freed memory; and, once in
 *     a CI run, glibc's "cannot allocate memory for thread-local data: ABORT" (exit 127) from a started
 *     thread whose first use of the addon's thread-locals needed a malloc the limit refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { convertCheckpoint, type ConvertResult } from '../lib/convert/index.js';
import { addonFile } from '../lib/native.js';
import { FIXTURE_DIR } from './helpers/golden.js';
import { lastJson, projectModule, runScript } from './helpers/child.js';

let dir: string;
let tiny: ConvertResult;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-rel-lifecycle-'));
  tiny = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f16' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Workers terminated while they describe', () => {
  it('never take the process down: 30+ Workers terminated at random moments of describe(), more while loading', async () => {
    // Three Workers at a time; each is terminated a few milliseconds after its model is ready (in the
    // middle of a describe or describeMany call: a vision batch, a prefill or a decode step), or, one
    // in six, at a random moment of its start-up.
    const script = `
      import { Worker } from 'node:worker_threads';
      const worker = new URL(${JSON.stringify(projectModule('test/helpers/describe-worker.mjs'))});
      const workerData = { model: process.env.MODEL, projector: process.env.PROJECTOR };
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const counts = { afterReady: 0, duringStartup: 0, errors: [] };
      async function one() {
        const w = new Worker(worker, { workerData, execArgv: [] }); // not the parent's --input-type
        const settled = new Promise((resolve) => {
          w.once('message', () => resolve('ready'));
          w.once('error', (e) => { counts.errors.push(String(e)); resolve('error'); });
          w.once('exit', () => resolve('exit'));
        });
        if (Math.random() < 5 / 6) {
          if ((await settled) !== 'ready') return;
          await sleep(Math.random() * 30);
          counts.afterReady++;
        } else {
          await sleep(Math.random() * 400);
          counts.duringStartup++;
        }
        await w.terminate();
      }
      for (let round = 0; round < 30 && counts.afterReady < 32; round++) await Promise.all([one(), one(), one()]);
      console.log(JSON.stringify(counts));
    `;
    const r = await runScript(script, { MODEL: tiny.textPath, PROJECTOR: tiny.projectorPath }, 300_000);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const counts = lastJson<{ afterReady: number; duringStartup: number; errors: string[] }>(r);
    expect(counts.errors).toEqual([]);
    expect(counts.afterReady).toBeGreaterThanOrEqual(30);
  }, 320_000);
});

// prlimit lowers the address-space limit of the running child once it has loaded its modules (Node
// itself needs far more address space to start than 1000 threads' stacks leave). Not under
// AddressSanitizer (scripts/asan.sh), whose allocator needs address space of its own.
const noPrlimit = process.platform !== 'linux' || spawnSync('prlimit', ['--version']).status !== 0;
const underAsan = /asan/.test(process.env.LD_PRELOAD ?? '');
describe.skipIf(noPrlimit || underAsan)('threads the OS will not start (Linux, needs prlimit; not under ASan)', () => {
  it('threads: 1000 under an address-space limit fails as THREAD_LIMIT naming the option; the process goes on', async () => {
    const script = `
      import { execFileSync } from 'node:child_process';
      import { readFileSync } from 'node:fs';
      const { loadModel } = await import(${JSON.stringify(projectModule('lib/model/paligemma.ts'))});
      const { PaliGemmaError } = await import(${JSON.stringify(projectModule('lib/errors.ts'))});
      const model = process.env.MODEL;
      await (await loadModel({ model, threads: 2 })).dispose(); // everything loaded once, before the limit
      // Room for a few more thread stacks (8 MiB each by default), not for 1000 of them.
      const size = Number(/VmSize:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      execFileSync('prlimit', ['--pid', String(process.pid), '--as=' + (size + 512 * 2 ** 20)]);
      const result = {};
      try {
        await loadModel({ model, threads: 1000 });
        result.loaded = true;
      } catch (e) {
        result.error = { name: e.name, code: e.code, message: e.message, typed: e instanceof PaliGemmaError };
      }
      const m = await loadModel({ model, threads: 2 });
      result.after = (await m.generate({ tokens: [2, 21209, 659, 108], maxTokens: 3 })).tokens.length;
      await m.dispose();
      console.log(JSON.stringify(result));
    `;
    const r = await runScript(script, { MODEL: tiny.textPath });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const result = lastJson<{ loaded?: boolean; error?: { name: string; code: string; message: string; typed: boolean }; after: number }>(r);
    expect(result.loaded).toBeUndefined();
    expect(result.error).toMatchObject({ name: 'PaliGemmaError', code: 'THREAD_LIMIT', typed: true });
    expect(result.error!.message).toMatch(/cannot start the model's 1000 threads \(option threads: 1000\): .* after \d+; .*lower `threads`/);
    expect(result.after).toBeGreaterThan(0);
  });
});

// glibc allocates a dlopen'ed library's thread-locals with malloc at each thread's first use of them
// (through __tls_get_addr) and aborts the process when that malloc fails. The addon's are in static
// TLS (native/static_tls.h), allocated with the thread by pthread_create, which fails cleanly.
const glibc = process.platform === 'linux' && Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);
const noReadelf = spawnSync('readelf', ['--version']).status !== 0;
describe.skipIf(!glibc || noReadelf)('thread-locals of the addon (Linux with glibc, needs readelf)', () => {
  it('are in static TLS: no thread allocates them on first use, so none can abort the process for want of memory', () => {
    const r = spawnSync('readelf', ['--dynamic', '--dyn-syms', '--wide', addonFile()], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\(FLAGS\)\s.*\bSTATIC_TLS\b/);
    expect(r.stdout).not.toMatch(/__tls_get_addr/);
  });
});
