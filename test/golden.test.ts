/**
 * End-to-end exactness against the reference implementation: the shared tiny PaliGemma is converted
 * with our converter, loaded, and run through every stage; each stage is compared with the golden
 * outputs of Hugging Face transformers (float32), for every SIMD variant this CPU can run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { convertCheckpoint } from '../lib/convert/convert.js';
import { loadModel, type PaliGemma } from '../lib/model/paligemma.js';
import { simdVariants } from '../lib/native.js';
import { FIXTURE_DIR, caseF32, caseI32, imageBytes, manifest, maxAbsDiff, pixelValues, tolerance } from './helpers/golden.js';

let dir: string;
const files: Record<'f32' | 'f16', { textPath: string; projectorPath: string }> = {} as never;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-golden-'));
  for (const outType of ['f32', 'f16'] as const) {
    files[outType] = await convertCheckpoint(FIXTURE_DIR, { outDir: path.join(dir, outType), outType });
  }
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** How many leading top-10 ids are decided: the manifest's rule for near-ties at rank 10. */
function decidedTopIds(margin: number): number {
  return margin < 1e-3 ? 9 : 10;
}

const variants = simdVariants().filter((v) => v.supported).map((v) => v.name);

describe.each(variants)('golden fixture, F32 weights, %s kernels', (simd) => {
  let model: PaliGemma;
  beforeAll(async () => {
    model = await loadModel({ model: files.f32.textPath, projector: files.f32.projectorPath, simd });
  });
  afterAll(() => model?.dispose());

  it('runs on the requested kernels', () => {
    expect(model.runtime.simd).toBe(simd);
    expect(model.imageTokens).toBe(manifest.num_image_tokens);
  });

  for (const c of manifest.cases) {
    it(`${c.name}: every stage within the manifest's tolerances`, async () => {
      const e = await model.evaluate({ pixelValues: pixelValues(c.image), prompt: c.prompt });
      expect(Array.from(e.inputIds)).toEqual(Array.from(caseI32(c, 'input_ids')));
      // Manifest: activations within 1e-4, logits within 1e-3, widened by the reference's own error
      // (see tolerance()).
      const check = (key: string, ours: Float32Array, recommended: number) => {
        const diff = maxAbsDiff(ours, caseF32(c, key));
        expect(diff, `${key}: max |diff| ${diff.toExponential(2)}`).toBeLessThanOrEqual(tolerance(c, key, recommended));
      };
      check('vision_out', e.visionOutput!, 1e-4);
      check('image_features', e.imageFeatures!, 1e-4);
      check('decoder_input', e.decoderInput, 1e-4);
      check('layer_out', e.layerOutputs, 1e-4);
      check('final_hidden', e.finalHidden, 1e-4);
      check('last_logits', e.lastLogits, 1e-3);

      const goldIds = caseI32(c, 'prefix_top10_ids');
      const goldLogits = caseF32(c, 'prefix_top10_logits');
      e.topk.forEach((t, pos) => {
        const keep = decidedTopIds(c.prefix_top10_minus_top11[pos]);
        expect(Array.from(t.ids.subarray(0, keep)), `top ids at position ${pos}`).toEqual(
          Array.from(goldIds.subarray(pos * 10, pos * 10 + keep)),
        );
        expect(maxAbsDiff(t.logits, goldLogits.subarray(pos * 10, pos * 10 + 10))).toBeLessThanOrEqual(1e-3);
      });
    });

    it(`${c.name}: the 12 greedy tokens`, async () => {
      const r = await model.describe({ pixelValues: pixelValues(c.image) }, { prompt: c.prompt, maxTokens: 12 });
      expect(r.tokens).toEqual(c.generated_ids);
      expect(r.text).toBe(model.tokenizer.decode(c.generated_ids));
    });
  }

  it('the golden image files through our preprocessing give the same greedy tokens', async () => {
    for (const c of manifest.cases) {
      const r = await model.describe(imageBytes(c.image), { prompt: c.prompt, maxTokens: 12 });
      expect(r.tokens, c.name).toEqual(c.generated_ids);
    }
  });
});

describe('golden fixture, F16 weights', () => {
  let model: PaliGemma;
  beforeAll(async () => {
    model = await loadModel({ model: files.f16.textPath, projector: files.f16.projectorPath });
  });
  afterAll(() => model?.dispose());

  for (const c of manifest.cases) {
    it(`${c.name}: close to the F32 reference, greedy tokens where the margins allow`, async () => {
      const e = await model.evaluate({ pixelValues: pixelValues(c.image), prompt: c.prompt });
      // F16 keeps 11 significant bits: each weight moves by up to 2^-11 relative, so activations of
      // magnitude ~5 (vision, features) and logits move by ~1e-2 after a few layers of mixing; the
      // residual stream (up to ~22) by proportionally more. These bounds are ~4x what was measured.
      expect(maxAbsDiff(e.imageFeatures!, caseF32(c, 'image_features'))).toBeLessThanOrEqual(2e-2);
      expect(maxAbsDiff(e.lastLogits, caseF32(c, 'last_logits'))).toBeLessThanOrEqual(5e-2);

      const r = await model.describe({ pixelValues: pixelValues(c.image) }, { prompt: c.prompt, maxTokens: 12 });
      // Greedy steps must agree until the first step whose golden top-1/top-2 margin is within the
      // F16 logit error: after that the reference itself is undecided at F16 precision.
      const firstUndecided = c.generated_top1_minus_top2.findIndex((m) => m < 0.1);
      const decided = firstUndecided < 0 ? c.generated_ids.length : firstUndecided;
      expect(r.tokens.slice(0, decided)).toEqual(c.generated_ids.slice(0, decided));
    });
  }
});
