/**
 * Soak test: many describe calls on the tiny fixture in one process, reporting resident memory
 * along the way. Memory must stay flat after warm-up — a leak of one logits row (1 MB) per call
 * would add 900 MB over 900 calls — and every call must give the same answer as the first call on
 * the same input. Exits 1 when either fails.
 *
 *   node --expose-gc --import tsx bench/soak.ts [calls=1000] [maxTokens=12] [warmUp=100]
 *
 * --expose-gc lets it collect garbage before each sample, so RSS shows live memory rather than
 * how far the collector happened to lag; without it the samples are noisier but still meaningful.
 * The vision cache is off, so every call runs the whole pipeline: decode, resize, vision, prefill,
 * decode loop.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { convertCheckpoint } from '../lib/convert/index.js';
import { loadModel } from '../lib/model/paligemma.js';

const calls = Number(process.argv[2] ?? 1000);
const maxTokens = Number(process.argv[3] ?? 12);
/** Calls before the baseline sample: the allocator, V8 and sharp's cache reach their steady state. */
const WARM_UP = Number(process.argv[4] ?? 100);
/** Allowed RSS growth from the baseline to the end. */
const MARGIN_MB = 20;
const SAMPLE_EVERY = 100;
if (![calls, maxTokens, WARM_UP].every((n) => Number.isInteger(n) && n > 0)) {
  console.error('usage: node --expose-gc --import tsx bench/soak.ts [calls=1000] [maxTokens=12] [warmUp=100] (positive integers)');
  process.exit(2);
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const golden = path.resolve(root, 'test/fixtures/paligemma-tiny/golden');
const inputs = [
  { image: readFileSync(path.join(golden, 'img_a1.png')), prompt: 'caption en' },
  { image: readFileSync(path.join(golden, 'img_a2.jpg')), prompt: 'answer en what is in the image?' },
  { image: readFileSync(path.join(golden, 'img_a1.png')), prompt: 'detect cat' },
];

const gc = (globalThis as { gc?: () => void }).gc;
const MB = 2 ** 20;

function sample(): { rss: number; heap: number; external: number } {
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss / MB, heap: m.heapUsed / MB, external: m.external / MB };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'pg-soak-'));
try {
  const files = await convertCheckpoint(path.dirname(golden), { outDir: dir, outType: 'f32' });
  const model = await loadModel({ model: files.textPath, projector: files.projectorPath, imageCacheBytes: 0 });
  console.log(`soak: ${calls} describe calls, maxTokens ${maxTokens}, ${model.runtime.simd} x ${model.runtime.threads} threads, gc ${gc ? 'forced before samples' : 'not exposed'}`);
  console.log('  calls   rss MB   heap MB   external MB   ms/call');
  const first: string[] = [];
  let mismatches = 0;
  let baseline: number | undefined;
  const start = sample();
  console.log(`${'0'.padStart(7)} ${start.rss.toFixed(1).padStart(8)} ${start.heap.toFixed(1).padStart(9)} ${start.external.toFixed(1).padStart(13)}`);
  let t0 = performance.now();
  for (let i = 1; i <= calls; i++) {
    const input = inputs[i % inputs.length];
    const r = await model.describe(input.image, { prompt: input.prompt, maxTokens });
    const answer = r.tokens.join();
    first[i % inputs.length] ??= answer;
    if (answer !== first[i % inputs.length]) mismatches++;
    if (i === WARM_UP) baseline = sample().rss;
    if (i % SAMPLE_EVERY === 0 || i === calls) {
      const msPerCall = (performance.now() - t0) / (i % SAMPLE_EVERY || SAMPLE_EVERY);
      const s = sample();
      console.log(`${String(i).padStart(7)} ${s.rss.toFixed(1).padStart(8)} ${s.heap.toFixed(1).padStart(9)} ${s.external.toFixed(1).padStart(13)} ${msPerCall.toFixed(1).padStart(9)}`);
      t0 = performance.now();
    }
  }
  const end = sample();
  await model.dispose();
  const afterDispose = sample();
  console.log(`after dispose: rss ${afterDispose.rss.toFixed(1)} MB`);
  console.log(`start ${start.rss.toFixed(1)} MB, end ${end.rss.toFixed(1)} MB`);
  let failed = mismatches > 0;
  if (mismatches > 0) console.log(`FAIL: ${mismatches} calls gave a different answer than the first call on the same input`);
  if (baseline !== undefined) {
    const growth = end.rss - baseline;
    const ok = growth < MARGIN_MB;
    failed ||= !ok;
    console.log(`${ok ? 'ok' : 'FAIL'}: RSS growth after ${WARM_UP} warm-up calls: ${growth.toFixed(1)} MB (margin ${MARGIN_MB} MB)`);
  } else {
    console.log(`(fewer than ${WARM_UP} calls: no growth check)`);
  }
  process.exitCode = failed ? 1 : 0;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
