/**
 * lib/model/files.ts: validating the text + projector GGUF pair, projector variants identified by shape,
 * and locating the files from paths or the Ollama store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readGGUF } from '../lib/gguf/reader.js';
import { writeGGUF } from '../lib/gguf/writer.js';
import type { GGMLTypeName, GGUFTensorInput, GGUFValue } from '../lib/gguf/types.js';
import { ModelFilesError, checkModelPair, describeProjector, describeTextModel, locateModelFiles } from '../lib/model/files.js';
import { OllamaError } from '../lib/ollama/index.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'model-files-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const u32 = (value: number): GGUFValue => ({ type: 'u32', value });
const f32 = (value: number): GGUFValue => ({ type: 'f32', value });
const str = (value: string): GGUFValue => ({ type: 'string', value });

interface TextShape { hidden: number; ff: number; layers: number; heads: number; kv: number; headDim: number; vocab: number; tokens?: number }
const TEXT: TextShape = { hidden: 48, ff: 96, layers: 2, heads: 4, kv: 1, headDim: 24, vocab: 300 };

/** A text GGUF with the published layout; tensor data left as holes (only headers matter here). */
function textInput(s: TextShape, edit?: (meta: Map<string, GGUFValue>, tensors: GGUFTensorInput[]) => void) {
  const meta = new Map<string, GGUFValue>([
    ['general.architecture', str('gemma')],
    ['gemma.context_length', u32(2048)],
    ['gemma.embedding_length', u32(s.hidden)],
    ['gemma.block_count', u32(s.layers)],
    ['gemma.feed_forward_length', u32(s.ff)],
    ['gemma.attention.head_count', u32(s.heads)],
    ['gemma.attention.head_count_kv', u32(s.kv)],
    ['gemma.attention.key_length', u32(s.headDim)],
    ['gemma.attention.value_length', u32(s.headDim)],
    ['gemma.attention.layer_norm_rms_epsilon', f32(1e-6)],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: Array.from({ length: s.tokens ?? s.vocab }, (_, i) => `t${i}`) }],
    ['tokenizer.ggml.bos_token_id', u32(2)],
  ]);
  const h = s.hidden;
  const tensors: GGUFTensorInput[] = [{ name: 'token_embd.weight', type: 'F16', dims: [h, s.vocab] }];
  for (let i = 0; i < s.layers; i++) {
    tensors.push(
      { name: `blk.${i}.attn_norm.weight`, type: 'F32', dims: [h] },
      { name: `blk.${i}.attn_q.weight`, type: 'F16', dims: [h, s.heads * s.headDim] },
      { name: `blk.${i}.attn_k.weight`, type: 'F16', dims: [h, s.kv * s.headDim] },
      { name: `blk.${i}.attn_v.weight`, type: 'F16', dims: [h, s.kv * s.headDim] },
      { name: `blk.${i}.attn_output.weight`, type: 'F16', dims: [s.heads * s.headDim, h] },
      { name: `blk.${i}.ffn_norm.weight`, type: 'F32', dims: [h] },
      { name: `blk.${i}.ffn_gate.weight`, type: 'F16', dims: [h, s.ff] },
      { name: `blk.${i}.ffn_up.weight`, type: 'F16', dims: [h, s.ff] },
      { name: `blk.${i}.ffn_down.weight`, type: 'F16', dims: [s.ff, h] },
    );
  }
  tensors.push({ name: 'output_norm.weight', type: 'F32', dims: [h] });
  edit?.(meta, tensors);
  return { metadata: meta, tensors };
}

interface ProjShape { hidden: number; ff: number; layers: number; heads: number; image: number; patch: number; proj: number }
const PROJ: ProjShape = { hidden: 32, ff: 80, layers: 2, heads: 4, image: 56, patch: 14, proj: 48 };

/** A projector GGUF per docs/FORMAT.md, optionally in a wild variant. */
function projectorInput(
  s: ProjShape,
  variant: { swapFfn?: boolean | ((block: number) => boolean); projectorName?: string } = {},
  edit?: (meta: Map<string, GGUFValue>, tensors: GGUFTensorInput[]) => void,
) {
  const meta = new Map<string, GGUFValue>([
    ['general.architecture', str('clip')],
    ['general.type', str('mmproj')],
    ['clip.projector_type', str('paligemma')],
    ['clip.has_vision_encoder', { type: 'bool', value: true }],
    ['clip.vision.image_size', u32(s.image)],
    ['clip.vision.patch_size', u32(s.patch)],
    ['clip.vision.embedding_length', u32(s.hidden)],
    ['clip.vision.feed_forward_length', u32(s.ff)],
    ['clip.vision.block_count', u32(s.layers)],
    ['clip.vision.attention.head_count', u32(s.heads)],
    ['clip.vision.attention.layer_norm_epsilon', f32(1e-6)],
    ['clip.vision.projection_dim', u32(s.proj)],
  ]);
  const h = s.hidden;
  const pair = (stem: string, dims: number[]): GGUFTensorInput[] => [
    { name: `${stem}.weight`, type: dims.length > 1 ? 'F16' : 'F32', dims },
    { name: `${stem}.bias`, type: 'F32', dims: [dims.at(-1)!] },
  ];
  const tensors: GGUFTensorInput[] = [
    ...pair('v.patch_embd', [s.patch, s.patch, 3, h]),
    { name: 'v.position_embd.weight', type: 'F32', dims: [h, (s.image / s.patch) ** 2] },
  ];
  for (let i = 0; i < s.layers; i++) {
    const b = `v.blk.${i}`;
    const swap = typeof variant.swapFfn === 'function' ? variant.swapFfn(i) : variant.swapFfn === true;
    tensors.push(...pair(`${b}.attn_q`, [h, h]), ...pair(`${b}.attn_k`, [h, h]), ...pair(`${b}.attn_v`, [h, h]), ...pair(`${b}.attn_out`, [h, h]));
    tensors.push(...pair(`${b}.ln1`, [h]), ...pair(`${b}.ln2`, [h]));
    tensors.push(...pair(`${b}.${swap ? 'ffn_down' : 'ffn_up'}`, [h, s.ff]), ...pair(`${b}.${swap ? 'ffn_up' : 'ffn_down'}`, [s.ff, h]));
  }
  tensors.push(...pair('v.post_ln', [h]), ...pair(variant.projectorName ?? 'mm.0', [h, s.proj]));
  edit?.(meta, tensors);
  return { metadata: meta, tensors };
}

let n = 0;
async function write(input: { metadata: Map<string, GGUFValue>; tensors: GGUFTensorInput[] }): Promise<string> {
  const file = path.join(tmp, `m${n++}.gguf`);
  await writeGGUF(file, input);
  return file;
}
const text = async (...a: Parameters<typeof textInput>) => describeTextModel(await readGGUF(await write(textInput(...a))));
const projector = async (...a: Parameters<typeof projectorInput>) => describeProjector(await readGGUF(await write(projectorInput(...a))));

async function failsWith(p: Promise<unknown> | (() => unknown), code: string, pattern?: RegExp): Promise<void> {
  const err = await (typeof p === 'function' ? Promise.resolve().then(p) : p).then(() => undefined, (e: unknown) => e);
  expect(err, 'should fail').toBeInstanceOf(ModelFilesError);
  expect((err as ModelFilesError).code, (err as Error).message).toBe(code);
  if (pattern) expect((err as Error).message).toMatch(pattern);
}

describe('text model', () => {
  it('describes the published layout', async () => {
    const t = await text(TEXT);
    expect(t).toMatchObject({ hiddenSize: 48, blockCount: 2, headCount: 4, headCountKv: 1, keyLength: 24, feedForwardLength: 96, vocabSize: 300, ropeTheta: 10000 });
    expect(t.tensors.blocks[1]!.ffnDown.name).toBe('blk.1.ffn_down.weight');
    expect(t.tensors.output).toBeUndefined();
  });

  it('rejects wrong architecture, missing/mis-shaped tensors, and a vocab bigger than the embedding', async () => {
    await failsWith(text(TEXT, (m) => m.set('general.architecture', str('llama'))), 'WRONG_ARCHITECTURE', /"llama", expected "gemma"/);
    await failsWith(text(TEXT, (_, t) => t.splice(t.findIndex((x) => x.name === 'blk.1.ffn_up.weight'), 1)), 'MISSING_TENSOR', /blk\.1\.ffn_up\.weight/);
    await failsWith(text(TEXT, (_, t) => (t.find((x) => x.name === 'blk.0.attn_k.weight')!.dims = [48, 48])), 'BAD_SHAPE', /blk\.0\.attn_k\.weight has dims \[48, 48\], expected \[48, 24\]/);
    await failsWith(text({ ...TEXT, tokens: 301 }), 'BAD_SHAPE', /301 tokens but token_embd\.weight only 300 rows/);
    await failsWith(text(TEXT, (m) => m.delete('gemma.embedding_length')), 'BAD_METADATA', /embedding_length/);
    await failsWith(text(TEXT, (m) => m.set('gemma.block_count', u32(1))), 'BAD_METADATA', /block 1/);
  });

  it('rejects a norm not stored as F32 (the kernels read norms as floats)', async () => {
    await failsWith(text(TEXT, (_, t) => (t.find((x) => x.name === 'blk.1.ffn_norm.weight')!.type = 'F16')), 'BAD_TENSOR', /blk\.1\.ffn_norm\.weight is F16, expected F32/);
    await failsWith(projector(PROJ, {}, (_, t) => (t.find((x) => x.name === 'v.blk.0.attn_k.bias')!.type = 'BF16')), 'BAD_TENSOR', /v\.blk\.0\.attn_k\.bias is BF16/);
  });

  it('takes weights in the types the kernels run (quantized where the rows allow), refuses others by name', async () => {
    const typed = (type: GGMLTypeName, names: string[]) => (_: unknown, t: GGUFTensorInput[]) => {
      for (const n of names) t.find((x) => x.name === n)!.type = type;
    };
    // Rows of 96 (attn_output, ffn_down) take 32-element blocks; 256-element ones need a wider model.
    for (const type of ['Q8_0', 'Q4_0', 'Q5_0'] as const) {
      const t = await text(TEXT, typed(type, ['blk.0.attn_output.weight', 'blk.1.ffn_down.weight']));
      expect(t.tensors.blocks[1]!.ffnDown.type).toBe(type);
    }
    const wide: TextShape = { ...TEXT, hidden: 256, ff: 512, headDim: 64 };
    const k = await text(wide, typed('Q4_K', ['token_embd.weight', 'blk.0.attn_q.weight']));
    expect(k.tensors.tokenEmbd.type).toBe('Q4_K');
    await failsWith(text(TEXT, typed('Q4_1', ['blk.1.ffn_down.weight'])), 'BAD_TENSOR',
      /blk\.1\.ffn_down\.weight is Q4_1, which the kernels do not run \(they run F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K\)/);
    await failsWith(projector(PROJ, {}, typed('Q5_1', ['v.blk.0.attn_q.weight'])), 'BAD_TENSOR', /v\.blk\.0\.attn_q\.weight is Q5_1/);
  });

  it('a projector file passed as the text model gets a hint', async () => {
    const file = await write(projectorInput(PROJ));
    await failsWith(readGGUF(file).then(describeTextModel), 'WRONG_ARCHITECTURE', /projector file/);
  });
});

describe('projector', () => {
  it('describes the standard layout', async () => {
    const p = await projector(PROJ);
    expect(p).toMatchObject({ imageSize: 56, patchSize: 14, patchCount: 16, channels: 3, hiddenSize: 32, feedForwardLength: 80, projectionDim: 48 });
    expect(p.variant).toEqual({ projectorName: 'mm.0', ffnNamesSwapped: false });
    expect(p.notes).toEqual([]);
    expect(p.tensors.blocks[0]!.ffnUp.weight.dims).toEqual([32, 80]);
    expect(p.imageMean).toEqual([0.5, 0.5, 0.5]);
  });

  it('identifies swapped ffn_up / ffn_down names by shape', async () => {
    const p = await projector(PROJ, { swapFfn: true });
    expect(p.variant.ffnNamesSwapped).toBe(true);
    expect(p.notes.join(' ')).toMatch(/ffn_down is fc1/);
    for (const b of p.tensors.blocks) {
      expect(b.ffnUp.weight.name).toMatch(/ffn_down\.weight$/); // fc1, hidden → ffn
      expect(b.ffnUp.weight.dims).toEqual([32, 80]);
      expect(b.ffnUp.bias.dims).toEqual([80]);
      expect(b.ffnDown.weight.name).toMatch(/ffn_up\.weight$/);
      expect(b.ffnDown.weight.dims).toEqual([80, 32]);
    }
  });

  it('accepts a projector named mm.input_projection', async () => {
    const p = await projector(PROJ, { projectorName: 'mm.input_projection' });
    expect(p.variant.projectorName).toBe('mm.input_projection');
    expect(p.tensors.projector.weight.name).toBe('mm.input_projection.weight');
    expect(p.notes.join(' ')).toMatch(/mm\.input_projection/);
  });

  it('both variants at once', async () => {
    const p = await projector(PROJ, { swapFfn: true, projectorName: 'mm.input_projection' });
    expect(p.variant).toEqual({ projectorName: 'mm.input_projection', ffnNamesSwapped: true });
  });

  it('rejects blocks that disagree on the FFN orientation', async () => {
    await failsWith(projector(PROJ, { swapFfn: (i) => i === 1 }), 'BAD_SHAPE', /v\.blk\.1\.ffn_up\.weight has dims \[80, 32\], expected \[32, 80\]/);
  });

  it('rejects bad metadata and shapes', async () => {
    await failsWith(projector(PROJ, {}, (m) => m.set('clip.projector_type', str('mlp'))), 'BAD_METADATA', /"mlp", expected "paligemma"/);
    await failsWith(projector(PROJ, {}, (m) => m.delete('clip.projector_type')), 'BAD_METADATA', /missing/);
    await failsWith(projector(PROJ, {}, (m) => m.set('clip.vision.image_size', u32(60))), 'BAD_METADATA', /60 is not a multiple of patch_size 14/);
    await failsWith(projector(PROJ, {}, (m) => m.set('clip.vision.image_size', u32(70))), 'BAD_SHAPE', /position_embd.*expected \[32, 25\]/);
    await failsWith(projector(PROJ, {}, (m) => m.set('clip.vision.projection_dim', u32(64))), 'BAD_SHAPE', /projection_dim is 64/);
    await failsWith(projector(PROJ, {}, (m) => m.set('clip.vision.feed_forward_length', u32(81))), 'BAD_SHAPE', /81/);
    await failsWith(projector(PROJ, {}, (_, t) => t.splice(t.findIndex((x) => x.name === 'v.post_ln.bias'), 1)), 'MISSING_TENSOR', /v\.post_ln\.bias/);
    await failsWith(projector(PROJ, { projectorName: 'mm.2' }), 'MISSING_TENSOR', /mm\.0\.weight or mm\.input_projection\.weight/);
    await failsWith(projector(PROJ, {}, (m) => m.set('general.architecture', str('gemma'))), 'WRONG_ARCHITECTURE', /text model/);
  });

  it('a projector whose output is not the text hidden size does not pair', async () => {
    const t = await text(TEXT);
    const p = await projector({ ...PROJ, proj: 64 });
    expect(() => checkModelPair(t, p)).toThrow(/outputs 64-dim embeddings but the text model .* has hidden size 48/);
    checkModelPair(t, await projector(PROJ));
  });
});

describe('locateModelFiles', () => {
  let textPath: string;
  let projPath: string;
  let badProjPath: string;
  let store: string;

  beforeAll(async () => {
    textPath = await write(textInput(TEXT));
    projPath = await write(projectorInput(PROJ));
    badProjPath = await write(projectorInput({ ...PROJ, proj: 64 }));
    store = path.join(tmp, 'store');
    const layer = (file: string, mediaType: string) => {
      const bytes = readFileSync(file);
      const hex = createHash('sha256').update(bytes).digest('hex');
      mkdirSync(path.join(store, 'blobs'), { recursive: true });
      writeFileSync(path.join(store, 'blobs', `sha256-${hex}`), bytes);
      return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
    };
    const manifestDir = path.join(store, 'manifests', 'registry.ollama.ai', 'jyan1', 'paligemma-mix-224');
    mkdirSync(manifestDir, { recursive: true });
    writeFileSync(path.join(manifestDir, 'latest'), JSON.stringify({
      layers: [layer(textPath, 'application/vnd.ollama.image.model'), layer(projPath, 'application/vnd.ollama.image.projector')],
    }));
    writeFileSync(path.join(manifestDir, 'textonly'), JSON.stringify({ layers: [layer(textPath, 'application/vnd.ollama.image.model')] }));
  });

  it('from paths', async () => {
    const m = await locateModelFiles({ model: textPath, projector: projPath });
    expect(m.text.hiddenSize).toBe(48);
    expect(m.projector!.projectionDim).toBe(48);
    await failsWith(locateModelFiles({ model: textPath, projector: badProjPath }), 'MISMATCH');
    await failsWith(locateModelFiles({ model: textPath }), 'NO_PROJECTOR', /paligemma convert/);
    expect((await locateModelFiles({ model: textPath, requireProjector: false })).projector).toBeUndefined();
    await failsWith(locateModelFiles({}), 'BAD_OPTIONS');
    await failsWith(locateModelFiles({ model: textPath, ollama: 'x' }), 'BAD_OPTIONS');
    await failsWith(locateModelFiles({ model: projPath, projector: textPath }), 'WRONG_ARCHITECTURE', /projector file/);
  });

  it('from the Ollama store, with a projector layer or a projector file', async () => {
    const m = await locateModelFiles({ ollama: 'jyan1/paligemma-mix-224', ollamaModelsDir: store });
    expect(m.ollama!.name).toBe('jyan1/paligemma-mix-224:latest');
    expect(m.projector!.hiddenSize).toBe(32);
    const err = await locateModelFiles({ ollama: 'jyan1/paligemma-mix-224:textonly', ollamaModelsDir: store }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OllamaError);
    expect((err as OllamaError).code).toBe('NO_PROJECTOR');
    const withFile = await locateModelFiles({ ollama: 'jyan1/paligemma-mix-224:textonly', projector: projPath, ollamaModelsDir: store });
    expect(withFile.projector!.path).toBe(projPath);
  });
});
