/**
 * The published weights against the reference engine's answers (test/fixtures/real-model/expected.json:
 * gemma.cpp's PaliGemma 3B mix 224 test). Runs when environment variables point at the model, and
 * skips with one line saying what to set otherwise; `npm run test:real` runs this file alone.
 *
 *   PALIGEMMA_REAL_MODEL=…/paligemma-3b-mix-224-f16.gguf PALIGEMMA_REAL_PROJECTOR=…/mmproj-…-f16.gguf npm run test:real
 *   PALIGEMMA_REAL_OLLAMA=jyan1/paligemma-mix-224 npm run test:real   (PALIGEMMA_REAL_PROJECTOR overrides its projector)
 *
 * Each case prints our answer next to what the reference gave, so a user with the weights can tell
 * at a glance whether their install is right. Location and segment tokens may differ by a bin or two
 * from gemma.cpp (it resized with nearest-neighbour sampling, we with PIL's bicubic, as Hugging Face
 * does): those are compared bin by bin and reported as "near".
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadModel, type LoadModelOptions, type PaliGemma } from '../lib/model/paligemma.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/real-model');
const expected = JSON.parse(readFileSync(path.join(fixtures, 'expected.json'), 'utf8')) as {
  image: string;
  cases: { prompt: string; contains: string }[];
};

const USAGE =
  'set PALIGEMMA_REAL_MODEL and PALIGEMMA_REAL_PROJECTOR to the text and projector GGUF files of paligemma-3b-mix-224, ' +
  'or PALIGEMMA_REAL_OLLAMA to an Ollama name such as jyan1/paligemma-mix-224 (`paligemma pull` gets either)';

/** The model named by the environment, or undefined when none is; a half-given one is an error, not a skip. */
function modelFromEnvironment(env = process.env): LoadModelOptions | undefined {
  const { PALIGEMMA_REAL_MODEL: model, PALIGEMMA_REAL_PROJECTOR: projector, PALIGEMMA_REAL_OLLAMA: ollama } = env;
  if (!model && !ollama) {
    if (projector) throw new Error(`PALIGEMMA_REAL_PROJECTOR is set but the model is not: ${USAGE}`);
    return undefined;
  }
  if (model && ollama) throw new Error('set PALIGEMMA_REAL_MODEL or PALIGEMMA_REAL_OLLAMA, not both');
  if (model && !projector) throw new Error(`PALIGEMMA_REAL_MODEL is set without PALIGEMMA_REAL_PROJECTOR: ${USAGE}`);
  for (const file of [model, projector]) if (file && !existsSync(file)) throw new Error(`${file} (from the environment) does not exist`);
  return model ? { model, projector } : { ollama, projector };
}

/** `<loc0123>`/`<seg045>` tokens and the text between them. */
const TOKEN = /<(loc|seg)(\d{3,4})>/g;

/**
 * How an answer compares with the reference's expected substring: `exact` (case aside), `near`
 * (the same tokens and words, every location/segment bin within 2), or `differs`.
 */
function compareAnswer(answer: string, contains: string): 'exact' | 'near' | 'differs' {
  if (answer.toLowerCase().includes(contains.toLowerCase())) return 'exact';
  if (!/<(loc|seg)\d/.test(contains)) return 'differs';
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const parts = contains.split(TOKEN); // [text, kind, bin, text, kind, bin, …, text]
  let pattern = '';
  const bins: number[] = [];
  for (let i = 0; i < parts.length; i += 3) {
    pattern += escape(parts[i]!);
    if (i + 2 < parts.length) {
      pattern += `<${parts[i + 1]}(\\d{${parts[i + 2]!.length}})>`;
      bins.push(Number(parts[i + 2]));
    }
  }
  const m = new RegExp(pattern, 'i').exec(answer);
  return m && bins.every((bin, i) => Math.abs(Number(m[i + 1]) - bin) <= 2) ? 'near' : 'differs';
}

const source = modelFromEnvironment();

if (source) {
  describe(`the published weights (${source.model ?? source.ollama}) against ${expected.image}`, () => {
    let model: PaliGemma;
    const image = path.join(fixtures, expected.image);

    beforeAll(async () => {
      model = await loadModel(source);
    }, 600_000);
    afterAll(async () => {
      await model?.dispose();
    });

    it.each(expected.cases)('$prompt', async ({ prompt, contains }) => {
      const r = await model.describe(image, { prompt, maxTokens: 64 });
      const verdict = compareAnswer(r.text, contains);
      console.log(`${prompt}\n  paligemma: ${JSON.stringify(r.text)}\n  reference: contains ${JSON.stringify(contains)}  → ${verdict}`);
      expect(verdict, `answer ${JSON.stringify(r.text)} should contain ${JSON.stringify(contains)}`).not.toBe('differs');
      expect(r.stopReason).toBe('eos');
    }, 600_000);
  });
} else {
  it.skip(`the published weights: ${USAGE}`, () => {});
}

describe('compareAnswer (the rule the real-weights cases use)', () => {
  it('accepts exact answers regardless of case, location bins within two, and nothing else', () => {
    expect(compareAnswer('zurich', 'zurich')).toBe('exact');
    expect(compareAnswer('Zurich', 'zurich')).toBe('exact');
    expect(compareAnswer('tokio', 'zurich')).toBe('differs');
    expect(compareAnswer('<loc0000><loc0010><loc1020><loc1022> water', '<loc1022> water')).toBe('exact');
    expect(compareAnswer('<loc0000><loc0010><loc1020><loc1021> water', '<loc1022> water')).toBe('near');
    expect(compareAnswer('<loc0000><loc0010><loc1020><loc1019> water', '<loc1022> water')).toBe('differs');
    expect(compareAnswer('<seg012> water', '<seg010> water')).toBe('near');
    expect(compareAnswer('<seg012> sky', '<seg010> water')).toBe('differs');
  });
});
