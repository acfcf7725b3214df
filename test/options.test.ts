/**
 * Unknown option names fail with the name and what was meant: near-miss typos, other spellings of our
 * names, and names carried over from node-llama-cpp, llama.cpp, Ollama and transformers. Checked on
 * the matcher itself and on every public entry point of a loaded (tiny) model, where a bad key must
 * reject the returned promise before any work starts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint } from '../lib/convert/convert.js';
import { loadModel, type PaliGemma } from '../lib/model/paligemma.js';
import { API_FOREIGN_NAMES, CLI_FOREIGN_NAMES, OPTION_KEYS, OptionError, checkOptions, suggestName } from '../lib/options.js';
import { FIXTURE_DIR, GOLDEN_DIR } from './helpers/golden.js';

describe('suggestName', () => {
  const known = ['model', 'projector', 'maxTokens', 'temperature', 'topK', 'topP', 'threads'];
  it.each([
    ['maxToken', 'maxTokens'], // a letter missing
    ['max_tokens', 'maxTokens'], // another spelling of the same name
    ['MaxTokens', 'maxTokens'],
    ['tempreature', 'temperature'], // transposed letters
    ['projecter', 'projector'],
    ['modelPath', 'model'], // node-llama-cpp
    ['mmproj', 'projector'], // llama.cpp
    ['n_threads', 'threads'],
    ['num_predict', 'maxTokens'], // Ollama
    ['max_new_tokens', 'maxTokens'], // transformers
  ])('%s → %s', (name, use) => {
    expect(suggestName(name, known, API_FOREIGN_NAMES)?.use).toBe(use);
  });

  it('says why there is nothing to set for GPU layers and context size, and guesses nothing for unrelated names', () => {
    expect(suggestName('n_gpu_layers', known, API_FOREIGN_NAMES)?.note).toMatch(/CPU only/);
    expect(suggestName('num_ctx', known, API_FOREIGN_NAMES)?.note).toMatch(/context length/);
    for (const name of ['x', 'foo', 'colour', 'batchSize']) expect(suggestName(name, known, API_FOREIGN_NAMES), name).toBeUndefined();
  });

  it('a foreign name whose counterpart the function does not take is not suggested', () => {
    expect(suggestName('mmproj', ['prompt', 'maxTokens'], API_FOREIGN_NAMES)).toBeUndefined();
  });

  it('every foreign name points at a real option or explains itself', () => {
    const all = new Set<string>(Object.values(OPTION_KEYS).flat());
    for (const [name, f] of Object.entries(API_FOREIGN_NAMES)) expect(f.use === undefined ? f.note : all.has(f.use), name).toBeTruthy();
    const flags = ['model', 'projector', 'threads', 'max-tokens', 'temperature', 'out'];
    for (const [name, f] of Object.entries(CLI_FOREIGN_NAMES)) expect(f.use === undefined ? f.note : flags.includes(f.use), name).toBeTruthy();
  });
});

describe('checkOptions', () => {
  it('names every unknown key with its suggestion and lists the options', () => {
    let err: unknown;
    try {
      checkOptions({ modelPath: 'a.gguf', gpuLayers: 33, threads: 2 }, 'loadModel');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OptionError);
    const e = err as OptionError;
    expect(e.code).toBe('UNKNOWN_OPTION');
    expect(e.options).toEqual(['modelPath', 'gpuLayers']);
    expect(e.message).toContain("loadModel: unknown options 'modelPath' ('modelPath' is node-llama-cpp's name: use 'model')");
    expect(e.message).toContain("'gpuLayers' (paligemma runs on the CPU only");
    expect(e.message).toContain('the options are model, projector, ollama');
  });

  it('ignores keys whose value is undefined, and values that are not objects', () => {
    expect(() => checkOptions({ modelPath: undefined, model: 'a' }, 'loadModel')).not.toThrow();
    expect(() => checkOptions(undefined, 'describe')).not.toThrow();
  });
});

describe('on a loaded model', () => {
  let dir: string;
  let model: PaliGemma;
  const image = path.join(GOLDEN_DIR, 'img_a1.png');

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'paligemma-options-'));
    const files = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f32' });
    model = await loadModel({ model: files.textPath, projector: files.projectorPath });
  });
  afterAll(async () => {
    await model?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  async function refused(call: () => Promise<unknown>, message: string | RegExp): Promise<void> {
    let promise: Promise<unknown> | undefined;
    expect(() => (promise = call())).not.toThrow(); // a rejection, never a synchronous throw
    const err = await promise!.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(OptionError);
    expect((err as Error).message).toMatch(message);
  }

  it('loadModel refuses modelPath before looking for files', async () => {
    await refused(() => loadModel({ modelPath: 'nowhere.gguf' } as never), /'modelPath' is node-llama-cpp's name: use 'model'/);
  });

  it('every entry point refuses unknown keys; the task methods take their own (lang, detail) through to describe', async () => {
    await refused(() => model.describe(image, { maxToken: 3 } as never), /describe: unknown option 'maxToken' \(did you mean 'maxTokens'\?\)/);
    await refused(() => model.describe(image, { lang: 'de' } as never), /describe: unknown option 'lang'/);
    await refused(() => model.ocr(image, { lang: 'de' } as never), /ocr: unknown option 'lang'/);
    await refused(() => model.caption(image, { num_predict: 3 } as never), /'num_predict' is Ollama's name: use 'maxTokens'/);
    await refused(() => model.answer(image, 'what?', { detail: 'long' } as never), /answer: unknown option 'detail'/);
    await refused(() => model.detect(image, 'cat', { onTextChunk: () => {} } as never), /use 'onToken'/);
    await refused(() => model.segment(image, 'cat', { temp: 1 } as never), /use 'temperature'/);
    await refused(() => model.describeMany([{ image, prompt: 'ocr', images: [image] } as never]), /describeMany item: unknown option 'images' \(the image is the first argument/);
    await refused(() => model.describeMany([], { batchSize: 2 } as never), /describeMany: unknown option 'batchSize'/);
    await refused(() => model.generate({ tokens: [2], max_tokens: 2 } as never), /generate: unknown option 'max_tokens' \(did you mean 'maxTokens'\?\)/);
    await refused(() => model.evaluate({ prompt: 'x', top_k: 3 } as never), /did you mean 'topK'/);
    await refused(() => model.stream(image, { maxTokens: 2, topk: 1 } as never).next(), /stream: unknown option 'topk' \(did you mean 'topK'\?\)/);

    const caption = await model.caption(image, { lang: 'de', detail: 'long', maxTokens: 2 });
    expect(caption.tokens).toHaveLength(2);
    const answer = await model.answer(image, 'what?', { lang: 'fr', maxTokens: 1 });
    expect(answer.tokens).toHaveLength(1);
  });
});
