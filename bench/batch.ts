/**
 * What the image cache and describeMany() buy on the full-size bench model:
 *  - the image cache: a second question about the same image vs the first (vision tower skipped);
 *  - batching: describeMany() at batch 1/2/4/8, and as many concurrent describe() calls (the step
 *    scheduler batches both), in generated tokens per second over the whole run (vision + prefill +
 *    decode), against batch 1 (one call after another).
 *
 *   node --import tsx bench/batch.ts [--batches 1,2,4,8] [--tokens 8]
 *
 * Uses the files of `npm run bench` (generated on first use). Absolute times depend on the load of
 * the machine; the ratios within one run are the figures to read.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

import { loadModel, type DescribeItem } from '../lib/index.js';
import { benchCacheDir, ensureModelFiles } from './model-files.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const batches = option('batches', '1,2,4,8').split(',').map(Number);
const tokens = Number(option('tokens', '8'));
const files = await ensureModelFiles(benchCacheDir(), { check: false });
const image = readFileSync(files.image);
const model = await loadModel({ model: files.text, projector: files.projector, maxSequences: Math.max(...batches) });
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

try {
  console.log(`paligemma batch bench: ${tokens} tokens per image, runtime ${JSON.stringify(model.runtime)}, loadavg ${loadavg()}`);

  // Image cache: same image, two prompts.
  const first = await model.describe(image, { prompt: 'caption en', maxTokens: tokens });
  const second = await model.describe(image, { prompt: 'answer en what is this?', maxTokens: tokens });
  const total = (r: typeof first) => r.timings.preprocessMs + r.timings.visionMs + r.timings.prefillMs + r.timings.decodeMs;
  console.log(
    `image cache: first call ${(total(first) / 1000).toFixed(2)} s (vision ${first.timings.visionMs.toFixed(0)} ms), ` +
      `second ${(total(second) / 1000).toFixed(2)} s (vision ${second.timings.visionMs.toFixed(0)} ms, hit ${second.timings.imageCacheHit}): ` +
      `${(total(second) / total(first)).toFixed(2)}x the first`,
  );

  // Batching: distinct images (a 1-pixel change each) so the cache does not help.
  const sharp = (await import('sharp')).default;
  const raw = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  const variant = (i: number) => {
    const data = Uint8Array.from(raw.data);
    data[0] = (data[0] + 1 + i) & 0xff;
    return { data, width: raw.info.width, height: raw.info.height, channels: raw.info.channels };
  };
  let baseline = 0;
  const runs = {
    describeMany: (items: DescribeItem[]) => model.describeMany(items, { concurrency: items.length }),
    'concurrent describe': (items: DescribeItem[]) => Promise.all(items.map(({ image, ...options }) => model.describe(image, options))),
  };
  for (const b of batches) {
    for (const [name, run] of Object.entries(runs)) {
      const items = Array.from({ length: b }, (_, i) => ({ image: variant(1000 * b + i + (name === 'describeMany' ? 0 : 500)), prompt: 'caption en', maxTokens: tokens }));
      const t0 = performance.now();
      const results = await run(items);
      const seconds = (performance.now() - t0) / 1000;
      const generated = results.reduce((s, r) => s + r.tokens.length, 0);
      const r = results[results.length - 1]!.timings;
      const rate = generated / seconds;
      if (baseline === 0) baseline = rate;
      console.log(
        `batch ${String(b).padStart(2)}, ${name}: ${seconds.toFixed(1)} s, ${generated} tokens, ${rate.toFixed(2)} tok/s ` +
          `(${(rate / baseline).toFixed(2)}x batch ${batches[0]}); last call: queue ${(r.queueMs / 1000).toFixed(1)} s, vision ${(r.visionMs / 1000).toFixed(1)} s, ` +
          `prefill ${(r.prefillMs / 1000).toFixed(1)} s, decode ${(r.decodeMs / 1000).toFixed(1)} s (${(r.decodeMs / Math.max(1, tokens - 1)).toFixed(0)} ms/step), loadavg ${loadavg()}`,
      );
      if (b === 1) break; // one call: both are the same
    }
  }
} finally {
  await model.dispose();
}
