/**
 * Conversion of small generated checkpoints: transformers' config defaults, configs that contradict the
 * tensors, sharded checkpoints, F16/BF16 sources, transformers ≥ 4.52 names, tokenizer.model vocabularies,
 * and the CLI.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convertCheckpoint } from '../lib/convert/convert.js';
import type { ConvertProgress, OutType as ConvertOutType } from '../lib/convert/convert.js';

/** The float output types (q8_0 is checked in quant-model.test.ts). */
type OutType = Exclude<ConvertOutType, 'q8_0'>;
import { ConvertError } from '../lib/convert/errors.js';
import { parseConfig } from '../lib/convert/config.js';
import { projectorTensorPlan, textTensorPlan } from '../lib/convert/tensors.js';
import { readGGUF } from '../lib/gguf/reader.js';
import { tensorBytes } from './helpers/gguf-fixtures.js';
import type { GGUFFile } from '../lib/gguf/types.js';
import { describeProjector, describeTextModel, checkModelPair } from '../lib/model/files.js';
import { Tokenizer } from '../lib/tokenizer/index.js';
import { main } from '../lib/cli/main.js';
import { tensorMismatches } from './helpers/float-ref.js';
import {
  expectedProjectorTensors, expectedTextTensors, readSafetensorsSimple, tinySentencePieceVocab, writeHFCheckpoint, writeSafetensors,
} from './helpers/hf-checkpoint.js';
import type { GeneratedTensor, TinySpec } from './helpers/hf-checkpoint.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'convert-gen-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
const freshDir = (label: string) => path.join(tmp, `${label}-${n++}`);

/** Shaped for transformers' defaults (head_dim 256, SigLIP patch 16 @ 224), tiny elsewhere. */
const DEFAULTS_SPEC: TinySpec = {
  text: { hidden: 32, intermediate: 48, layers: 1, heads: 1, kvHeads: 1, headDim: 256, vocab: 320 },
  vision: { hidden: 16, intermediate: 24, layers: 1, heads: 2, imageSize: 224, patchSize: 16 },
};
/** A small spec with non-default values everywhere. */
const SMALL_SPEC: TinySpec = {
  text: { hidden: 24, intermediate: 40, layers: 2, heads: 2, kvHeads: 1, headDim: 8, vocab: 330 },
  vision: { hidden: 12, intermediate: 20, layers: 2, heads: 3, imageSize: 28, patchSize: 7 },
};

/** Every tensor of both files against the generated source, under the conversion rules. */
function checkAllTensors(text: GGUFFile, projector: GGUFFile, tensors: Map<string, GeneratedTensor>, spec: TinySpec, outType: OutType): void {
  const outGGML = { f32: 'F32', f16: 'F16', bf16: 'BF16' }[outType];
  const check = (gguf: GGUFFile, expected: [string, string, string][]) => {
    expect(gguf.tensors.map((t) => t.name)).toEqual(expected.map(([g]) => g));
    for (const [name, hf, rule] of expected) {
      const t = gguf.tensorsByName.get(name)!;
      const src = tensors.get(hf)!;
      expect(t.dims, name).toEqual([...src.shape].reverse());
      expect(t.type, name).toBe(rule === 'weight' ? outGGML : 'F32');
      const r = tensorMismatches({ dtype: src.dtype, bytes: src.bytes! }, { type: t.type, bytes: tensorBytes(gguf, name) }, rule === 'norm');
      expect(r.examples, `${name}: ${r.count} mismatches`).toEqual([]);
    }
  };
  check(text, expectedTextTensors(spec.text.layers));
  check(projector, expectedProjectorTensors(spec.vision.layers));
}

async function rejection(promise: Promise<unknown>): Promise<ConvertError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err, 'should reject').toBeInstanceOf(ConvertError);
  return err as ConvertError;
}

describe('the real paligemma-3b-mix-224 config.json', () => {
  // As published on the Hugging Face hub: no head_dim, rms_norm_eps, rope_theta, image_size, layer_norm_eps.
  const real = {
    architectures: ['PaliGemmaForConditionalGeneration'], bos_token_id: 2, eos_token_id: 1, hidden_size: 2048, ignore_index: -100,
    image_token_index: 257152, model_type: 'paligemma', pad_token_id: 0, projection_dim: 2048,
    text_config: {
      hidden_activation: 'gelu_pytorch_tanh', hidden_size: 2048, intermediate_size: 16384, model_type: 'gemma', num_attention_heads: 8,
      num_hidden_layers: 18, num_image_tokens: 256, num_key_value_heads: 1, torch_dtype: 'float32', vocab_size: 257216,
    },
    torch_dtype: 'float32', transformers_version: '4.41.0.dev0',
    vision_config: {
      hidden_size: 1152, intermediate_size: 4304, model_type: 'siglip_vision_model', num_attention_heads: 16, num_hidden_layers: 27,
      num_image_tokens: 256, patch_size: 14, projection_dim: 2048, projector_hidden_act: 'gelu_fast', vision_use_head: false,
    },
  };

  it('gets the defaults and implies the real checkpoint\'s tensor shapes', () => {
    const cfg = parseConfig(real);
    expect(cfg.text).toMatchObject({ headDim: 256, rmsNormEps: 1e-6, ropeTheta: 10000, numKvHeads: 1 });
    expect(cfg.vision).toMatchObject({ imageSize: 224, patchSize: 14, layerNormEps: 1e-6, numChannels: 3 });
    const shapes = new Map([...textTensorPlan(cfg), ...projectorTensorPlan(cfg)].map((m) => [m.hf, m.shape]));
    expect(shapes.size).toBe(2 + 18 * 9 + 3 + 27 * 16 + 2 + 2);
    // Shapes of the published checkpoint's tensors.
    expect(shapes.get('language_model.model.embed_tokens.weight')).toEqual([257216, 2048]);
    expect(shapes.get('language_model.model.layers.17.self_attn.q_proj.weight')).toEqual([2048, 2048]);
    expect(shapes.get('language_model.model.layers.0.self_attn.k_proj.weight')).toEqual([256, 2048]);
    expect(shapes.get('language_model.model.layers.0.mlp.down_proj.weight')).toEqual([2048, 16384]);
    expect(shapes.get('vision_tower.vision_model.embeddings.patch_embedding.weight')).toEqual([1152, 3, 14, 14]);
    expect(shapes.get('vision_tower.vision_model.embeddings.position_embedding.weight')).toEqual([256, 1152]);
    expect(shapes.get('vision_tower.vision_model.encoder.layers.26.mlp.fc1.weight')).toEqual([4304, 1152]);
    expect(shapes.get('multi_modal_projector.linear.weight')).toEqual([2048, 1152]);
  });
});

describe('config defaults (keys the real paligemma-3b-mix-224 config omits)', () => {
  const omit = [
    'text_config.head_dim', 'text_config.rms_norm_eps', 'text_config.rope_theta', 'text_config.max_position_embeddings',
    'vision_config.image_size', 'vision_config.layer_norm_eps', 'vision_config.patch_size', 'vision_config.num_channels',
  ];
  let text: GGUFFile;
  let projector: GGUFFile;
  let tensors: Map<string, GeneratedTensor>;
  const added = { 316: { content: '<image>', special: true } };

  beforeAll(async () => {
    const dir = freshDir('defaults');
    tensors = writeHFCheckpoint(dir, { ...DEFAULTS_SPEC, omitConfigKeys: omit, addedTokens: added }).tensors;
    const r = await convertCheckpoint(dir, { outDir: path.join(dir, 'out'), outType: 'f32', name: 'tiny' });
    text = await readGGUF(r.textPath);
    projector = await readGGUF(r.projectorPath);
    expect(r.vocabSource).toBe('tokenizer.model');
  });

  it('uses head_dim 256, rms_norm_eps 1e-6, rope_theta 10000 (no rope key, as published)', () => {
    const m = text.metadata;
    expect(m.get('gemma.attention.key_length')!.value).toBe(256);
    expect(m.get('gemma.attention.value_length')!.value).toBe(256);
    expect(m.get('gemma.attention.layer_norm_rms_epsilon')!.value).toBe(Math.fround(1e-6));
    expect(m.has('gemma.rope.freq_base')).toBe(false);
    expect(m.get('gemma.context_length')!.value).toBe(2048);
  });

  it('uses SigLIP image_size 224, patch_size 16, layer_norm_eps 1e-6', () => {
    const m = projector.metadata;
    expect(m.get('clip.vision.image_size')!.value).toBe(224);
    expect(m.get('clip.vision.patch_size')!.value).toBe(16);
    expect(m.get('clip.vision.attention.layer_norm_epsilon')!.value).toBe(Math.fround(1e-6));
    expect(projector.tensorsByName.get('v.position_embd.weight')!.dims).toEqual([16, 196]);
    expect(projector.tensorsByName.get('v.patch_embd.weight')!.dims).toEqual([16, 16, 3, 16]);
  });

  it('converts every tensor by the rules (F32: bit-identical, norms 1 + w incl. edge values)', () => {
    checkAllTensors(text, projector, tensors, DEFAULTS_SPEC, 'f32');
  });

  it('takes the vocabulary from tokenizer.model: exact pieces, scores and types, added tokens, padding', () => {
    const pieces = tinySentencePieceVocab();
    const tokens = text.metadata.get('tokenizer.ggml.tokens')!.value as string[];
    const scores = text.metadata.get('tokenizer.ggml.scores')!.value as Float32Array;
    const types = text.metadata.get('tokenizer.ggml.token_type')!.value as Int32Array;
    expect(tokens.length).toBe(DEFAULTS_SPEC.text.vocab);
    expect(tokens.slice(0, pieces.length)).toEqual(pieces.map((p) => p.piece));
    expect(Array.from(scores.slice(0, pieces.length))).toEqual(pieces.map((p) => p.score));
    expect(Array.from(types.slice(0, pieces.length))).toEqual(pieces.map((p) => p.type));
    expect(tokens[316]).toBe('<image>');
    expect(types[316]).toBe(4); // PaliGemma pieces are user-defined
    expect(tokens[pieces.length]).toBe(`[PAD${pieces.length}]`);
    expect(types[pieces.length]).toBe(5);
    expect(text.metadata.get('tokenizer.ggml.unknown_token_id')!.value).toBe(3);
  });

  it('gives a pair that lib/model/files.ts accepts, and a working tokenizer', () => {
    const t = describeTextModel(text);
    const p = describeProjector(projector);
    checkModelPair(t, p);
    expect(t.keyLength).toBe(256);
    expect(p.patchCount).toBe(196);
    const tok = Tokenizer.fromGGUF(text);
    const ids = tok.encode('caption en<loc0001>');
    expect(ids.map((id) => tokens(text)[id])).toEqual(['<bos>', 'caption', '▁en', '<loc0001>']);
  });
});

const tokens = (g: GGUFFile) => g.metadata.get('tokenizer.ggml.tokens')!.value as string[];

describe('configs that contradict the tensors are rejected, naming the tensor and both shapes', () => {
  let dir: string;
  beforeAll(() => {
    dir = freshDir('contradict');
    writeHFCheckpoint(dir, SMALL_SPEC);
  });
  const withConfig = async (edit: (c: any) => void) => {
    const cfgPath = path.join(dir, 'config.json');
    const original = JSON.parse(readFileSync(cfgPath, 'utf8'));
    const cfg = structuredClone(original);
    edit(cfg);
    writeFileSync(cfgPath, JSON.stringify(cfg));
    try {
      return await rejection(convertCheckpoint(dir, { outDir: path.join(dir, 'out') }));
    } finally {
      writeFileSync(cfgPath, JSON.stringify(original));
    }
  };

  it('head_dim', async () => {
    const err = await withConfig((c) => (c.text_config.head_dim = 12));
    expect(err.code).toBe('SHAPE_MISMATCH');
    expect(err.message).toContain('"language_model.model.layers.0.self_attn.q_proj.weight" has shape [16, 24] but config.json implies [24, 24]');
  });

  it('a missing head_dim whose default (256) does not fit', async () => {
    const err = await withConfig((c) => delete c.text_config.head_dim);
    expect(err.code).toBe('SHAPE_MISMATCH');
    expect(err.message).toMatch(/q_proj\.weight" has shape \[16, 24\] but config\.json implies \[512, 24\]/);
  });

  it('image_size / patch_size', async () => {
    const err = await withConfig((c) => (c.vision_config.image_size = 35));
    expect(err.message).toContain('"vision_tower.vision_model.embeddings.position_embedding.weight" has shape [16, 12] but config.json implies [25, 12]');
    const err2 = await withConfig((c) => delete c.vision_config.patch_size);
    expect(err2.code).toBe('BAD_CONFIG'); // 28 is not a multiple of the default 16
  });

  it('vocab, hidden size, intermediate size', async () => {
    expect((await withConfig((c) => (c.text_config.vocab_size = 400))).message).toContain('embed_tokens.weight" has shape [330, 24] but config.json implies [400, 24]');
    expect((await withConfig((c) => (c.vision_config.intermediate_size = 21))).message).toContain('fc1.weight" has shape [20, 12] but config.json implies [21, 12]');
    expect((await withConfig((c) => { c.text_config.hidden_size = 32; c.projection_dim = 32; })).code).toBe('SHAPE_MISMATCH');
  });

  it('layer counts: fewer layers leave tensors unaccounted for, more layers miss tensors', async () => {
    const fewer = await withConfig((c) => (c.text_config.num_hidden_layers = 1));
    expect(fewer.code).toBe('UNEXPECTED_TENSOR');
    expect(fewer.message).toContain('language_model.model.layers.1.');
    const more = await withConfig((c) => (c.vision_config.num_hidden_layers = 3));
    expect(more.code).toBe('MISSING_TENSOR');
    expect(more.message).toContain('vision_tower.vision_model.encoder.layers.2.');
  });

  it('malformed values and other models', async () => {
    expect((await withConfig((c) => (c.text_config.num_attention_heads = '2'))).code).toBe('BAD_CONFIG');
    expect((await withConfig((c) => (c.text_config.rms_norm_eps = -1))).code).toBe('BAD_CONFIG');
    expect((await withConfig((c) => (c.model_type = 'llava'))).code).toBe('UNSUPPORTED');
    expect((await withConfig((c) => (c.text_config.model_type = 'gemma2'))).code).toBe('UNSUPPORTED');
    expect((await withConfig((c) => (c.projection_dim = 16))).code).toBe('BAD_CONFIG');
  });

  it('writes nothing when validation fails', () => {
    expect(existsSync(path.join(dir, 'out'))).toBe(false);
  });
});

describe('checkpoint variants', () => {
  it('sharded, F16 source, transformers ≥ 4.52 names → bf16, with progress reports', async () => {
    const dir = freshDir('sharded');
    const spec: TinySpec = { ...SMALL_SPEC, dtype: 'F16', shards: 3, newNames: true, seed: 99 };
    const { tensors } = writeHFCheckpoint(dir, spec);
    const progress: ConvertProgress[] = [];
    const r = await convertCheckpoint(dir, { outDir: path.join(dir, 'out'), outType: 'bf16', onProgress: (p) => progress.push({ ...p }) });
    checkAllTensors(await readGGUF(r.textPath), await readGGUF(r.projectorPath), tensors, spec, 'bf16');
    const total = [...tensors.values()].reduce((s, t) => s + t.bytes!.byteLength, 0);
    expect(progress.at(-1)).toMatchObject({ bytesDone: total, bytesTotal: total });
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.bytesDone).toBeGreaterThan(progress[i - 1]!.bytesDone);
  });

  it('BF16 source → f16', async () => {
    const dir = freshDir('bf16src');
    const spec: TinySpec = { ...SMALL_SPEC, dtype: 'BF16', seed: 5 };
    const { tensors } = writeHFCheckpoint(dir, spec);
    const r = await convertCheckpoint(dir, { outDir: path.join(dir, 'out'), outType: 'f16' });
    checkAllTensors(await readGGUF(r.textPath), await readGGUF(r.projectorPath), tensors, spec, 'f16');
  });

  it('F32 source with edge values → f16 (ties, subnormals, overflow, NaN)', async () => {
    const dir = freshDir('edges');
    const { tensors } = writeHFCheckpoint(dir, { ...SMALL_SPEC, seed: 6 });
    const r = await convertCheckpoint(dir, { outDir: path.join(dir, 'out'), outType: 'f16' });
    checkAllTensors(await readGGUF(r.textPath), await readGGUF(r.projectorPath), tensors, SMALL_SPEC, 'f16');
  });

  it('a rope_theta other than 10000 is written as gemma.rope.freq_base', async () => {
    const dir = freshDir('rope');
    writeHFCheckpoint(dir, SMALL_SPEC);
    const cfgPath = path.join(dir, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    cfg.text_config.rope_theta = 500000;
    writeFileSync(cfgPath, JSON.stringify(cfg));
    const r = await convertCheckpoint(dir, { outDir: path.join(dir, 'out'), outType: 'f32' });
    expect((await readGGUF(r.textPath)).metadata.get('gemma.rope.freq_base')).toEqual({ type: 'f32', value: 500000 });
  });

  it('tokenizer problems: none at all, more pieces than embedding rows', async () => {
    const dir = freshDir('notok');
    writeHFCheckpoint(dir, { ...SMALL_SPEC, pieces: null });
    expect((await rejection(convertCheckpoint(dir, { outDir: path.join(dir, 'out') }))).code).toBe('MISSING_FILE');
    const big = freshDir('bigtok');
    const pieces = tinySentencePieceVocab();
    for (let i = 0; pieces.length <= SMALL_SPEC.text.vocab; i++) pieces.push({ piece: `x${i}`, score: -1000 - i, type: 1 });
    writeHFCheckpoint(big, { ...SMALL_SPEC, pieces });
    const err = await rejection(convertCheckpoint(big, { outDir: path.join(big, 'out') }));
    expect(err.code).toBe('BAD_TOKENIZER');
    expect(err.message).toMatch(/331 pieces but the embedding has only 330 rows/);
  });

  it('a missing tensor is named', async () => {
    const dir = freshDir('missing');
    writeHFCheckpoint(dir, { ...SMALL_SPEC, shards: 2 });
    const index = JSON.parse(readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    delete index.weight_map['language_model.model.norm.weight'];
    // Rewrite the shard holding it without it.
    const shard = readdirSync(dir).find((f) => f.startsWith('model-00002-'))!;
    const kept = [...readSafetensorsSimple(path.join(dir, shard))].filter(([k]) => k !== 'language_model.model.norm.weight');
    unlinkSync(path.join(dir, shard));
    writeSafetensors(path.join(dir, shard), kept.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.bytes })));
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    const err = await rejection(convertCheckpoint(dir, { outDir: path.join(dir, 'out') }));
    expect(err.code).toBe('MISSING_TENSOR');
    expect(err.message).toContain('"language_model.model.norm.weight" (for output_norm.weight)');
  });
});

describe('paligemma convert (CLI)', () => {
  let dir: string;
  beforeAll(() => {
    dir = freshDir('cli');
    writeHFCheckpoint(dir, SMALL_SPEC);
  });
  const run = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
    const error = vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
    try {
      return { code: await main(['convert', ...args]), out: out.join('\n'), err: err.join('\n') };
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  };

  it('converts and prints the two paths', async () => {
    const outDir = path.join(dir, 'cli-out');
    const r = await run([dir, '--out', outDir, '--outtype=bf16', '--name', 'mini']);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toEqual([path.join(outDir, 'mini-bf16.gguf'), path.join(outDir, 'mmproj-mini-bf16.gguf')]);
    expect((await readGGUF(path.join(outDir, 'mini-bf16.gguf'))).tensorsByName.get('blk.0.attn_q.weight')!.type).toBe('BF16');
  });

  it('usage errors exit with 2, conversion errors with 1, --help with 0', async () => {
    expect((await run([dir])).code).toBe(2);
    expect((await run(['--out', 'x'])).code).toBe(2);
    expect((await run([dir, '--out', 'x', '--outtype', 'q4'])).code).toBe(2);
    expect((await run([dir, '--out', 'x', '--bogus'])).code).toBe(2);
    const missing = await run([path.join(dir, 'nope'), '--out', path.join(dir, 'o')]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/config\.json/);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/--outtype f16\|bf16\|f32/);
  });
});
