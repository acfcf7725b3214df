// A Worker that loads the tiny model and describes images until it is terminated (test/reliability-
// lifecycle.test.ts terminates it at random moments). workerData: { model, projector }. Posts
// 'ready' once the model is loaded. Plain JS: Workers do not inherit tsx's hooks, so it registers
// them itself before importing the TypeScript sources.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { loadModel } = await import('../../lib/model/paligemma.ts');
const model = await loadModel({ model: workerData.model, projector: workerData.projector, threads: 2 });
parentPort.postMessage('ready');
const pixels = new Float32Array(3 * 56 * 56);
for (let i = 0; ; i++) {
  pixels[i % pixels.length] = (i % 7) / 7; // a new image every call: the vision tower runs too
  if (i % 3 === 2) await model.describeMany([{ image: { pixelValues: pixels } }, { image: { pixelValues: pixels.slice() }, maxTokens: 5 }]);
  else await model.describe({ pixelValues: pixels }, { maxTokens: 8 + (i % 20) });
}
