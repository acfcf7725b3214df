#!/usr/bin/env node
// The tiny PaliGemma's golden test as a plain Node script, for where vitest does not go: the
// package installed from its tarball, Windows under wine, arm64 under qemu. Run it where
// `paligemma` is installed (it imports the package by name):
//   node golden-check.mjs FIXTURE_DIR [--require] [--simd NAME]
// It converts the Hugging Face fixture with the package's converter (F32 weights), loads it, and for
// every golden case checks the last position's logits (the manifest's 1e-3, widened by the
// reference's own error as test/helpers/golden.ts does) and the 12 greedy tokens, from the
// reference pixels and from the image file. Prints one JSON line; exits 1 on any mismatch.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const [fixture, ...flags] = process.argv.slice(2);
if (!fixture) {
  console.error('usage: node golden-check.mjs FIXTURE_DIR [--require] [--simd NAME]');
  process.exit(2);
}
const viaRequire = flags.includes('--require');
const simd = flags.includes('--simd') ? flags[flags.indexOf('--simd') + 1] : undefined;
const pg = viaRequire ? createRequire(import.meta.url)('paligemma') : await import('paligemma');

const golden = path.join(fixture, 'golden');
const manifest = JSON.parse(readFileSync(path.join(golden, 'manifest.json'), 'utf8'));
const f32 = (file) => {
  const b = readFileSync(path.join(golden, file));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const maxAbsDiff = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

const dir = mkdtempSync(path.join(os.tmpdir(), 'pg-golden-check-'));
const failures = [];
let model;
try {
  const files = await pg.convertCheckpoint(fixture, { outDir: dir, outType: 'f32' });
  model = await pg.loadModel({ model: files.textPath, projector: files.projectorPath, simd });
  for (const c of manifest.cases) {
    const pixelValues = f32(manifest.images[c.image].pixel_values.file);
    const e = await model.evaluate({ pixelValues, prompt: c.prompt });
    const gold = f32(c.files.last_logits.file);
    const own = manifest.agreement_golden_vs_numpy_f64[c.name]?.last_logits?.max_abs ?? 0;
    const diff = e.lastLogits.length === gold.length ? maxAbsDiff(e.lastLogits, gold) : Infinity;
    if (!(diff <= 1e-3 + 2 * own)) failures.push(`${c.name}: last logits differ by ${diff}`);
    const expected = JSON.stringify(c.generated_ids);
    for (const [from, image] of [['pixels', { pixelValues }], ['image file', readFileSync(path.join(golden, c.image))]]) {
      const r = await model.describe(image, { prompt: c.prompt, maxTokens: 12 });
      if (JSON.stringify(r.tokens) !== expected) failures.push(`${c.name} (${from}): tokens ${JSON.stringify(r.tokens)}, expected ${expected}`);
    }
  }
  console.log(JSON.stringify({
    ok: failures.length === 0,
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    module: viaRequire ? 'require' : 'import',
    simd: model.runtime.simd,
    cases: manifest.cases.length,
    failures,
  }));
} finally {
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failures.length ? 1 : 0);
