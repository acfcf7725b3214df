/**
 * The demo of a fresh checkout: converts the tiny PaliGemma of test/fixtures (random weights, Hugging Face
 * layout) with our converter, loads it and runs each task on its test image. The words are
 * gibberish — the weights are random — but every stage runs: conversion, image preprocessing,
 * the vision tower, prefill, decoding and task parsing.
 *
 *   npm run demo
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { convertCheckpoint, cpuFeatures, loadModel, simdVariant } from '../lib/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(root, 'test/fixtures/paligemma-tiny');
const image = path.join(fixture, 'golden/img_a2.jpg');
const outDir = path.join(root, '.cache/demo');

if (!existsSync(fixture)) {
  console.error(`demo: the tiny model is expected at ${fixture}`);
  process.exit(1);
}
const features = Object.entries(cpuFeatures()).filter(([, v]) => v === true).map(([k]) => k);
console.log(`CPU: ${features.join(' ')}; kernels: ${simdVariant()}`);

mkdirSync(outDir, { recursive: true });
const t0 = performance.now();
const files = await convertCheckpoint(fixture, { outDir, outType: 'f32', name: 'paligemma-tiny' });
console.log(`converted ${path.relative(root, fixture)} -> ${path.relative(root, files.textPath)}, ${path.relative(root, files.projectorPath)} (${(performance.now() - t0).toFixed(0)} ms)`);

const model = await loadModel({ model: files.textPath, projector: files.projectorPath });
try {
  const bytes = readFileSync(image);
  const caption = await model.caption(bytes, { maxTokens: 12 });
  const t = caption.timings;
  console.log(`caption: ${JSON.stringify(caption.text)}`);
  console.log(
    `  preprocess ${t.preprocessMs.toFixed(1)} ms, vision ${t.visionMs.toFixed(1)} ms, prefill ${t.prefillMs.toFixed(1)} ms, decode ${t.decodeMs.toFixed(1)} ms (${t.tokensPerSecond.toFixed(0)} tok/s)`,
  );
  console.log(`answer: ${JSON.stringify((await model.answer(bytes, 'what is in the image?', { maxTokens: 8 })).text)}`);
  console.log(`detect: ${JSON.stringify(await model.detect(bytes, ['cat'], { maxTokens: 12 }))}`);
} finally {
  await model.dispose();
}
