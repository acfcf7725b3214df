/**
 * Model-level validation: every mismatched or malformed model file, bad option and impossible
 * request fails with a typed error that names the problem — before any heavy work. "Before heavy
 * work" is checked, not assumed: the addon's NativeModel is watched, and a refused load must not
 * have constructed a handle (which maps the weights), a refused call must not have reached a
 * single native method.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, copyFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { convertCheckpoint, type ConvertResult } from '../lib/convert/index.js';
import { GGUFError, type GGUFValue } from '../lib/gguf/index.js';
import { ImageError } from '../lib/image/index.js';
import { ModelFilesError, locateModelFiles } from '../lib/model/files.js';
import { textSpec } from '../lib/model/native-spec.js';
import { PaliGemmaError } from '../lib/errors.js';
import { loadModel, type PaliGemma } from '../lib/model/paligemma.js';
import { SimdError, native, simdVariants } from '../lib/native.js';
import { TokenizerError } from '../lib/tokenizer/index.js';
import { FIXTURE_DIR, imageBytes, pixelValues } from './helpers/golden.js';
import { caught, rewriteGGUF, watchNativeModel, withTensor, type NativeWatch } from './helpers/reliability.js';

let dir: string;
let tiny: ConvertResult;
const variant = (name: string) => path.join(dir, name);

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-rel-validation-'));
  tiny = await convertCheckpoint(FIXTURE_DIR, { outDir: path.join(dir, 'f32'), outType: 'f32' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let watch: NativeWatch;
beforeEach(() => {
  watch = watchNativeModel();
});
afterEach(() => watch.restore());

/** loadModel must fail with `type`/`code`, with a message matching `message`, and map nothing. */
async function expectLoadError(
  options: Parameters<typeof loadModel>[0],
  type: new (...args: never[]) => Error,
  code: string | undefined,
  message: RegExp,
): Promise<void> {
  const err = await caught(() => loadModel(options));
  expect(err).toBeInstanceOf(type);
  if (code !== undefined) expect(err.code).toBe(code);
  expect(err.message).toMatch(message);
  expect(watch.constructed, 'no native handle may be created for a rejected load').toBe(0);
}

describe('loadModel rejects files that do not fit, before mapping them', () => {
  it('a projector whose output width is not the text hidden size (text/projector mismatch)', async () => {
    // The tiny text model has hidden 48; this projector outputs 64-dim embeddings.
    const projector = variant('mmproj-64.gguf');
    await rewriteGGUF(tiny.projectorPath, projector, {
      metadata: (m) => m.set('clip.vision.projection_dim', { type: 'u32', value: 64 }),
      tensors: (t) =>
        withTensor(withTensor(t, 'mm.0.weight', (w) => ({ ...w, dims: [32, 64], data: undefined })), 'mm.0.bias', (b) => ({
          ...b,
          dims: [64],
          data: undefined,
        })),
    });
    await expectLoadError({ model: tiny.textPath, projector }, ModelFilesError, 'MISMATCH', /outputs 64-dim .* hidden size 48/);
  });

  it('the two files swapped, or a text model of another architecture', async () => {
    await expectLoadError({ model: tiny.projectorPath, projector: tiny.textPath }, ModelFilesError, 'WRONG_ARCHITECTURE', /"clip", expected "gemma".*projector/);
    await expectLoadError({ model: tiny.textPath, projector: tiny.textPath }, ModelFilesError, 'WRONG_ARCHITECTURE', /"gemma", expected "clip"/);
    const llama = variant('llama.gguf');
    await rewriteGGUF(tiny.textPath, llama, { metadata: (m) => m.set('general.architecture', { type: 'string', value: 'llama' }) });
    await expectLoadError({ model: llama }, ModelFilesError, 'WRONG_ARCHITECTURE', /"llama"/);
  });

  it('a missing tensor, named', async () => {
    const file = variant('no-ffn-down.gguf');
    await rewriteGGUF(tiny.textPath, file, { tensors: (t) => withTensor(t, 'blk.1.ffn_down.weight', () => undefined) });
    await expectLoadError({ model: file }, ModelFilesError, 'MISSING_TENSOR', /blk\.1\.ffn_down\.weight/);
    const noPost = variant('no-post-ln.gguf');
    await rewriteGGUF(tiny.projectorPath, noPost, { tensors: (t) => withTensor(t, 'v.post_ln.bias', () => undefined) });
    await expectLoadError({ model: tiny.textPath, projector: noPost }, ModelFilesError, 'MISSING_TENSOR', /v\.post_ln\.bias/);
  });

  it('mis-shaped tensors, with the shape found and the one expected', async () => {
    const cases: [string, string, number[], RegExp][] = [
      [tiny.textPath, 'blk.0.attn_k.weight', [48, 48], /blk\.0\.attn_k\.weight has dims \[48, 48\], expected \[48, 24\]/],
      [tiny.textPath, 'output_norm.weight', [47], /output_norm\.weight has dims \[47\], expected \[48\]/],
      [tiny.textPath, 'token_embd.weight', [40, 257216], /token_embd\.weight has dims \[40, 257216\]/],
      [tiny.projectorPath, 'v.blk.1.attn_q.weight', [32, 16], /v\.blk\.1\.attn_q\.weight has dims \[32, 16\]/],
      [tiny.projectorPath, 'v.position_embd.weight', [32, 15], /v\.position_embd\.weight has dims \[32, 15\]/],
    ];
    for (const [src, name, dims, message] of cases) {
      const file = variant(`bad-${name}.gguf`);
      await rewriteGGUF(src, file, { tensors: (t) => withTensor(t, name, (w) => ({ ...w, dims, data: undefined })) });
      const options = src === tiny.textPath ? { model: file } : { model: tiny.textPath, projector: file };
      await expectLoadError(options, ModelFilesError, 'BAD_SHAPE', message);
    }
  });

  it('a tokenizer that can emit ids beyond the embedding rows', async () => {
    // 257216 pieces but only 257000 embedding rows: ids 257000.. (the <seg…> pieces, <image>) have no row.
    const file = variant('short-embd.gguf');
    await rewriteGGUF(tiny.textPath, file, {
      tensors: (t) => withTensor(t, 'token_embd.weight', (w) => ({ ...w, dims: [48, 257000], data: undefined })),
    });
    await expectLoadError({ model: file }, ModelFilesError, 'BAD_SHAPE', /tokenizer has 257216 tokens but token_embd\.weight only 257000 rows/);
    // A special id outside the vocabulary.
    const badBos = variant('bad-bos.gguf');
    await rewriteGGUF(tiny.textPath, badBos, { metadata: (m) => m.set('tokenizer.ggml.bos_token_id', { type: 'u32', value: 300000 }) });
    await expectLoadError({ model: badBos }, TokenizerError, 'BAD_ID', /300000/);
  });

  it('bad hyperparameters and metadata of the wrong type', async () => {
    const cases: [string, GGUFValue | undefined, RegExp][] = [
      ['gemma.context_length', { type: 'u32', value: 0 }, /context_length is 0/],
      ['gemma.context_length', { type: 'string', value: '2048' }, /context_length/],
      ['gemma.attention.head_count', { type: 'u32', value: 5 }, /attn_q|head_count/],
      ['gemma.attention.layer_norm_rms_epsilon', undefined, /layer_norm_rms_epsilon/],
      ['gemma.block_count', { type: 'u32', value: 1 }, /block_count is 1 but the file has a block 1/],
    ];
    for (const [key, value, message] of cases) {
      const file = variant(`meta-${key}-${value?.type}.gguf`);
      await rewriteGGUF(tiny.textPath, file, { metadata: (m) => (value === undefined ? m.delete(key) : m.set(key, value)) });
      const err = await caught(() => loadModel({ model: file }));
      expect(err, key).toBeInstanceOf(ModelFilesError);
      expect(['BAD_METADATA', 'BAD_SHAPE']).toContain(err.code);
      expect(err.message).toMatch(message);
    }
    const noVocab = variant('no-tokens.gguf');
    await rewriteGGUF(tiny.textPath, noVocab, { metadata: (m) => m.delete('tokenizer.ggml.tokens') });
    await expectLoadError({ model: noVocab }, TokenizerError, 'MISSING_KEY', /tokenizer\.ggml\.tokens/);
    expect(watch.constructed).toBe(0);
  });

  it('a file cut short: tensor data past the end', async () => {
    const file = variant('truncated.gguf');
    copyFileSync(tiny.textPath, file);
    truncateSync(file, statSync(file).size - 4096);
    await expectLoadError({ model: file }, GGUFError, 'TENSOR_OUT_OF_BOUNDS', /past the end of the file/);
  });
});

describe('loadModel maps failures of the native construction to ModelFilesError, naming the file', () => {
  it('a file gone between validation and mapping: MAP_FAILED', async () => {
    const file = variant('vanishing.gguf');
    copyFileSync(tiny.textPath, file);
    // onProgress('tokenizer') comes after the headers were read and before the weights are mapped.
    const onProgress = (p: { phase: string }) => p.phase === 'tokenizer' && rmSync(file);
    const err = await caught(() => loadModel({ model: file, onProgress }));
    expect(err).toBeInstanceOf(ModelFilesError);
    expect(err).toBeInstanceOf(PaliGemmaError);
    expect(err.code).toBe('MAP_FAILED');
    expect((err as ModelFilesError).path).toBe(file);
    expect(err.message).toBe(`${file}: cannot open: No such file or directory`);
  });

  // Root may lock any amount (CAP_IPC_LOCK): then the child drops that capability with setpriv.
  // AddressSanitizer (scripts/asan.sh) turns mlock into a no-op that succeeds.
  const root = process.getuid?.() === 0;
  const cannotRefuse = (root && spawnSync('setpriv', ['--version']).status !== 0) || /asan/.test(process.env.LD_PRELOAD ?? '');
  it.skipIf(cannotRefuse)('lockMemory beyond RLIMIT_MEMLOCK: LOCK_FAILED (child process, 64 KiB limit; skipped as root without setpriv, or under ASan)', () => {
    const script = `const { loadModel } = await import(${JSON.stringify(pathToFileURL(path.resolve('lib/model/paligemma.ts')).href)});
      try { await loadModel({ model: process.env.MODEL, lockMemory: true }); console.log('locked'); }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, path: e.path, message: e.message })); }`;
    const node = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    const shell = `ulimit -l 64 && exec ${node}`;
    const child = root
      ? spawnSync('setpriv', ['--bounding-set=-ipc_lock', 'sh', '-c', shell], { env: { ...process.env, MODEL: tiny.textPath }, encoding: 'utf8', timeout: 30_000 })
      : spawnSync('sh', ['-c', shell], { env: { ...process.env, MODEL: tiny.textPath }, encoding: 'utf8', timeout: 30_000 });
    expect(child.status, child.stderr).toBe(0);
    const err = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { name: string; code: string; path: string; message: string };
    expect(err).toMatchObject({ name: 'ModelFilesError', code: 'LOCK_FAILED', path: tiny.textPath });
    expect(err.message).toMatch(/cannot lock \d+ bytes in memory \(.*RLIMIT_MEMLOCK is 65536 bytes\)/);
  });
});

describe('loadModel rejects bad options before reading any file', () => {
  it('threads, simd, cache size, maxPixels and the choice of files', async () => {
    const model = tiny.textPath;
    for (const threads of [0, -1, 1.5, Number.NaN, 5000, '2'])
      await expectLoadError({ model, threads: threads as number }, PaliGemmaError, 'BAD_ARGUMENT', /threads must be an integer/);
    await expectLoadError({ model, simd: 'sse9' as never }, SimdError, undefined, /unknown SIMD variant 'sse9'/);
    // A variant compiled in but not runnable here (AVX-512 on this Zen 3), when the build has one.
    const unsupported = simdVariants().find((v) => !v.supported);
    if (unsupported) await expectLoadError({ model, simd: unsupported.name }, SimdError, undefined, /needs .* which this CPU does not have/);
    for (const imageCacheBytes of [-1, 1.5, Number.NaN])
      await expectLoadError({ model, imageCacheBytes }, PaliGemmaError, 'BAD_ARGUMENT', /imageCacheBytes/);
    for (const maxPixels of [0, -5, 1.5]) await expectLoadError({ model, maxPixels }, ImageError, 'BAD_OPTION', /maxPixels must be a positive integer/);
    await expectLoadError({ model, onProgress: 'log' as never }, PaliGemmaError, 'BAD_ARGUMENT', /onProgress must be a function/);
    await expectLoadError(null as never, PaliGemmaError, 'BAD_ARGUMENT', /options must be an object/);
    await expectLoadError({}, ModelFilesError, 'BAD_OPTIONS', /exactly one of `model`/);
    await expectLoadError({ model, ollama: 'paligemma' }, ModelFilesError, 'BAD_OPTIONS', /exactly one of `model`/);
    await expectLoadError({ model: path.join(dir, 'does-not-exist.gguf') }, GGUFError, 'IO', /does-not-exist\.gguf/);
  });
});

describe('calls reject impossible requests before any native work', () => {
  let model: PaliGemma;
  let textOnly: PaliGemma;
  // Both models' native handles record their calls here for the whole block.
  let loadWatch: NativeWatch;
  beforeAll(async () => {
    loadWatch = watchNativeModel();
    model = await loadModel({ model: tiny.textPath, projector: tiny.projectorPath });
    textOnly = await loadModel({ model: tiny.textPath });
  });
  afterAll(async () => {
    loadWatch.restore();
    await model?.dispose();
    await textOnly?.dispose();
  });

  /** `call` must reject with PaliGemmaError `code` naming the problem, and reach no native method. */
  async function expectRefused(m: PaliGemma, call: (m: PaliGemma) => Promise<unknown>, code: string, message: RegExp) {
    const before = loadWatch.calls.length;
    const err = await caught(() => call(m));
    expect(err).toBeInstanceOf(PaliGemmaError);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
    expect(loadWatch.calls.slice(before), `native calls for a refused ${code}`).toEqual([]);
  }

  const image = { pixelValues: pixelValues('img_a1.png') };

  it('bad generation options', async () => {
    for (const maxTokens of [0, -1, 1.5, Number.NaN, Infinity, '5'])
      await expectRefused(model, (m) => m.describe(image, { maxTokens: maxTokens as number }), 'BAD_ARGUMENT', /maxTokens must be a positive integer/);
    const sampling: [object, RegExp][] = [
      [{ temperature: -1 }, /temperature/],
      [{ temperature: Number.NaN }, /temperature/],
      [{ temperature: Infinity }, /temperature/],
      [{ topK: -1 }, /topK/],
      [{ topK: 2.5 }, /topK/],
      [{ topP: 0 }, /topP/],
      [{ topP: 1.5 }, /topP/],
      [{ topP: Number.NaN }, /topP/],
      [{ seed: 0.5 }, /seed/],
      [{ signal: {} }, /signal must be an AbortSignal/],
      [{ onToken: 'print' }, /onToken must be a function/],
    ];
    for (const [options, message] of sampling) {
      await expectRefused(model, (m) => m.describe(image, { maxTokens: 4, ...options }), 'BAD_ARGUMENT', message);
      await expectRefused(model, (m) => m.generate({ tokens: [2, 21209], maxTokens: 4, ...options }), 'BAD_ARGUMENT', message);
    }
    await expectRefused(model, (m) => m.describe(image, { prompt: 42 as never }), 'BAD_ARGUMENT', /prompt must be a string/);
    await expectRefused(model, (m) => m.evaluate({ prompt: 'caption en', topK: 0 }), 'BAD_ARGUMENT', /topK must be an integer/);
    await expectRefused(model, (m) => m.describe({ pixelValues: new Float32Array(10) }), 'BAD_ARGUMENT', /pixelValues must be a Float32Array of 3 x 56 x 56/);
  });

  it('bad token ids for generate()', async () => {
    await expectRefused(model, (m) => m.generate({ tokens: [] }), 'BAD_ARGUMENT', /must not be empty/);
    await expectRefused(model, (m) => m.generate(undefined as never), 'BAD_ARGUMENT', /tokens must be an array/);
    for (const bad of [-1, 257216, 1e12, 1.5, Number.NaN, 'a'])
      await expectRefused(model, (m) => m.generate({ tokens: [2, bad as number], maxTokens: 2 }), 'BAD_ARGUMENT', /token/);
  });

  it('prompt + maxTokens beyond the context length (CONTEXT_OVERFLOW)', async () => {
    expect(model.contextLength).toBe(2048);
    // 'caption en' takes 16 image + 4 text positions; the last generated token needs no position.
    await expectRefused(model, (m) => m.describe(image, { maxTokens: 2048 - 20 + 2 }), 'CONTEXT_OVERFLOW', /20 positions and maxTokens is 2030.*context length is 2048/);
    await expectRefused(model, (m) => m.generate({ tokens: new Array(2049).fill(2), maxTokens: 1 }), 'CONTEXT_OVERFLOW', /2049 positions/);
    await expectRefused(model, (m) => m.generate({ tokens: new Array(2000).fill(2), maxTokens: 50 }), 'CONTEXT_OVERFLOW', /2000 positions and maxTokens is 50/);
    const longPrompt = 'cat '.repeat(2100);
    await expectRefused(model, (m) => m.describe(image, { prompt: longPrompt, maxTokens: 1 }), 'CONTEXT_OVERFLOW', /context length is 2048/);
    await expectRefused(model, (m) => m.evaluate({ image: imageBytes('img_a1.png'), prompt: longPrompt }), 'CONTEXT_OVERFLOW', /context length is 2048/);
    await expectRefused(model, (m) => m.describeMany([{ image, maxTokens: 4 }, { image, maxTokens: 2048 }]), 'CONTEXT_OVERFLOW', /maxTokens is 2048/);
  });

  it('an image given to a text-only model (NO_VISION)', async () => {
    expect(textOnly.imageTokens).toBe(0);
    await expectRefused(textOnly, (m) => m.describe(image), 'NO_VISION', /without a projector/);
    await expectRefused(textOnly, (m) => m.describe(imageBytes('img_a2.jpg'), { prompt: 'ocr' }), 'NO_VISION', /projector/);
    await expectRefused(textOnly, (m) => m.evaluate({ prompt: 'caption en', pixelValues: image.pixelValues }), 'NO_VISION', /projector/);
    await expectRefused(textOnly, (m) => m.describeMany([{ image }]), 'NO_VISION', /projector/);
    // Text-only use still works.
    const r = await textOnly.generate({ tokens: [2, 21209, 659, 108], maxTokens: 3 });
    expect(r.tokens.length).toBeGreaterThan(0);
  });
});

describe('the context-length boundary, on a copy of the model with a 32-position context', () => {
  let model: PaliGemma;
  beforeAll(async () => {
    const file = variant('ctx32.gguf');
    await rewriteGGUF(tiny.textPath, file, { metadata: (m) => m.set('gemma.context_length', { type: 'u32', value: 32 }) });
    model = await loadModel({ model: file, projector: tiny.projectorPath });
  });
  afterAll(() => model?.dispose());

  it('runs a request that fills the context exactly, and refuses one more token', async () => {
    const image = { pixelValues: pixelValues('img_a1.png') };
    // 20 prompt positions + 12 fed-back tokens = 32: the 13th generated token needs no position.
    const r = await model.describe(image, { maxTokens: 13 });
    expect(r.stopReason === 'eos' || r.tokens.length === 13).toBe(true);
    const err = await caught(() => model.describe(image, { maxTokens: 14 }));
    expect(err).toBeInstanceOf(PaliGemmaError);
    expect(err.code).toBe('CONTEXT_OVERFLOW');
    const g = await model.generate({ tokens: new Array(32).fill(2), maxTokens: 1 });
    expect(g.tokens.length + (g.stopReason === 'eos' ? 1 : 0)).toBe(1);
    expect((await caught(() => model.generate({ tokens: new Array(32).fill(2), maxTokens: 2 }))).code).toBe('CONTEXT_OVERFLOW');
  });
});

describe('the native handle checks its spec itself (defence in depth)', () => {
  /** The spec loadModel would pass for the tiny text model, as plain JSON to corrupt. */
  async function spec() {
    const files = await locateModelFiles({ model: tiny.textPath, requireProjector: false });
    return JSON.parse(JSON.stringify({ text: textSpec(files.text) }));
  }
  const NativeModel = () => native.NativeModel;

  it('rejects a corrupt spec with an Error naming the tensor or field, and the file, never a crash', async () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a spec being corrupted on purpose
    const cases: [string, (s: any) => void, string, RegExp][] = [
      ['tensor past the end of the file', (s) => (s.text.tensors['blk.1.ffn_up.weight'].offset = 55_640_000), 'BAD_TENSOR', /blk\.1\.ffn_up\.weight lies outside the file/],
      ['negative offset', (s) => (s.text.tensors['output_norm.weight'].offset = -4), 'BAD_TENSOR', /output_norm\.weight lies outside the file/],
      ['misaligned offset', (s) => (s.text.tensors['blk.0.attn_norm.weight'].offset += 2), 'BAD_TENSOR', /blk\.0\.attn_norm\.weight is misaligned/],
      ['missing tensor', (s) => delete s.text.tensors['blk.0.attn_v.weight'], 'MISSING_TENSOR', /missing tensor blk\.0\.attn_v\.weight/],
      ['wrong shape', (s) => (s.text.tensors['blk.0.attn_q.weight'].dims = [48, 95]), 'BAD_SHAPE', /attn_q\.weight has shape \[48, 95\], expected \[48, 96\]/],
      ['unsupported type', (s) => (s.text.tensors['blk.0.attn_q.weight'].type = 3), 'BAD_TENSOR', /ggml type 3; the kernels read F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K$/],
      ['rows not whole blocks', (s) => (s.text.tensors['blk.0.attn_q.weight'].type = 8), 'BAD_TENSOR', /attn_q\.weight has rows of 48 elements, not a multiple of Q8_0's block of 32/],
      ['quantized blocks past the end', (s) => {
        // 48 rows of 3 Q8_0 blocks (34 bytes each) starting 2 bytes too late: the bounds use the type's block size.
        s.text.tensors['blk.1.ffn_down.weight'] = { ...s.text.tensors['blk.1.ffn_down.weight'], type: 8, offset: statSync(tiny.textPath).size - 48 * 3 * 34 + 2 };
      }, 'BAD_TENSOR', /blk\.1\.ffn_down\.weight lies outside the file/],
      ['norm not F32', (s) => (s.text.tensors['output_norm.weight'].type = 1), 'BAD_TENSOR', /output_norm\.weight must be F32/],
      ['more layers than tensors', (s) => (s.text.config.nLayers = 3), 'MISSING_TENSOR', /missing tensor blk\.2\./],
      ['zero heads', (s) => (s.text.config.nHeads = 0), 'BAD_METADATA', /text\.nHeads must be an integer in 1\.\./],
      ['fractional size', (s) => (s.text.config.hidden = 47.5), 'BAD_METADATA', /text\.hidden must be an integer/],
      ['a context beyond 2^30', (s) => (s.text.config.context = 2 ** 31), 'BAD_METADATA', /text\.context must be an integer in 1\.\.1073741824/],
      ['no eps', (s) => delete s.text.config.eps, 'BAD_METADATA', /text\.eps must be a number/],
      ['heads not a multiple of KV heads', (s) => (s.text.config.nKvHeads = 3), 'BAD_METADATA', /multiple of nKvHeads/],
      ['no such file', (s) => (s.text.path = path.join(dir, 'gone.gguf')), 'MAP_FAILED', /gone\.gguf: cannot open/],
    ];
    for (const [what, corrupt, code, message] of cases) {
      const s = await spec();
      corrupt(s);
      const err = await caught(() => new (NativeModel())(s));
      expect(err.message, what).toMatch(message);
      expect(err.code, what).toBe(code);
      expect((err as { path?: string }).path, what).toBe(s.text.path);
      expect(err.message.startsWith(`${s.text.path}: `), what).toBe(true);
    }
    expect(() => new (NativeModel())(null as never)).toThrow(/spec must be an object/);
    const valid = await spec();
    expect(() => new (NativeModel())({ ...valid, simd: 'sse9' })).toThrow(/sse9/);
    // The uncorrupted spec loads and runs (so the cases above failed for the reason given).
    const handle = new (NativeModel())(valid);
    expect((await handle.prefill(0, null, Int32Array.of(2))).logits.length).toBe(257216);
    handle.dispose();
    // Q8_0 blocks ending exactly at the end of the file are inside it.
    const atEnd = await spec();
    atEnd.text.tensors['blk.1.ffn_down.weight'] = { ...atEnd.text.tensors['blk.1.ffn_down.weight'], type: 8, offset: statSync(tiny.textPath).size - 48 * 3 * 34 };
    new (NativeModel())(atEnd).dispose();
  });
});
