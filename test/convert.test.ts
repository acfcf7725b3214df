/**
 * Converts the shared paligemma-tiny fixture (F32 safetensors) to each output type and checks the
 * result against the rules, key by key and tensor by tensor, with expectations computed here from the
 * safetensors file and the rules — not from the converter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convertCheckpoint } from '../lib/convert/convert.js';
import type { OutType as ConvertOutType } from '../lib/convert/convert.js';
import { readGGUF } from '../lib/gguf/reader.js';
import { tensorBytes } from './helpers/gguf-fixtures.js';
import type { GGUFFile, GGUFValue } from '../lib/gguf/types.js';
import { Tokenizer } from '../lib/tokenizer/index.js';
import { tensorMismatches } from './helpers/float-ref.js';
import { expectedProjectorTensors, expectedTextTensors, fixtureDir, readSafetensorsSimple } from './helpers/hf-checkpoint.js';
import type { Rule } from './helpers/hf-checkpoint.js';

/** The float output types (q8_0 is checked in quant-model.test.ts). */
type OutType = Exclude<ConvertOutType, 'q8_0'>;
const OUT_TYPES: OutType[] = ['f32', 'f16', 'bf16'];
const GGML_TYPE = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const;
const FILE_TYPE = { f32: 0, f16: 1, bf16: 32 } as const; // llama.cpp's LLAMA_FTYPE values

let tmp: string;
const files = new Map<OutType, { text: GGUFFile; projector: GGUFFile }>();
const source = readSafetensorsSimple(path.join(fixtureDir, 'model.safetensors'));
const config = JSON.parse(readFileSync(path.join(fixtureDir, 'config.json'), 'utf8'));

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'convert-test-'));
  for (const outType of OUT_TYPES) {
    const r = await convertCheckpoint(fixtureDir, { outDir: tmp, outType });
    files.set(outType, { text: await readGGUF(r.textPath), projector: await readGGUF(r.projectorPath) });
  }
}, 180_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A metadata value as a plain JS value, with its GGUF type. */
function plain(v: GGUFValue | undefined): [string, unknown] | undefined {
  if (!v) return undefined;
  return v.type === 'array' ? [`array:${v.itemType}`, Array.from(v.value as ArrayLike<unknown>)] : [v.type, v.value];
}

/** Checks every tensor of `gguf` against `expected`: names and order, dims, types, data. */
function checkTensors(gguf: GGUFFile, expected: [string, string, Rule][], outType: OutType): void {
  expect(gguf.tensors.map((t) => t.name)).toEqual(expected.map(([g]) => g));
  for (const [name, hf, rule] of expected) {
    const t = gguf.tensorsByName.get(name)!;
    const src = source.get(hf)!;
    expect(t.dims, name).toEqual([...src.shape].reverse()); // GGUF dims = PyTorch shape reversed
    expect(t.type, name).toBe(rule === 'weight' ? GGML_TYPE[outType] : 'F32');
    const { count, examples } = tensorMismatches(src, { type: t.type, bytes: tensorBytes(gguf, name) }, rule === 'norm');
    expect(examples, `${name}: ${count} mismatching elements`).toEqual([]);
  }
}

describe.each(OUT_TYPES)('fixture → %s', (outType) => {
  it('writes <name>-<type>.gguf and mmproj-<name>-<type>.gguf that readGGUF validates', () => {
    const { text, projector } = files.get(outType)!;
    expect(path.basename(text.path)).toBe(`paligemma-tiny-${outType}.gguf`);
    expect(path.basename(projector.path)).toBe(`mmproj-paligemma-tiny-${outType}.gguf`);
    expect(text.version).toBe(3);
    expect(existsSync(`${text.path}.partial`)).toBe(false);
  });

  it('text metadata: exactly the published key set, with values from config.json', () => {
    const { text } = files.get(outType)!;
    const tc = config.text_config;
    const want: Record<string, [string, unknown]> = {
      'general.architecture': ['string', 'gemma'],
      'general.name': ['string', 'paligemma-tiny'],
      'general.file_type': ['u32', FILE_TYPE[outType]],
      'gemma.context_length': ['u32', 2048],
      'gemma.embedding_length': ['u32', tc.hidden_size],
      'gemma.block_count': ['u32', tc.num_hidden_layers],
      'gemma.feed_forward_length': ['u32', tc.intermediate_size],
      'gemma.attention.head_count': ['u32', tc.num_attention_heads],
      'gemma.attention.head_count_kv': ['u32', tc.num_key_value_heads],
      'gemma.attention.key_length': ['u32', tc.head_dim],
      'gemma.attention.value_length': ['u32', tc.head_dim],
      'gemma.attention.layer_norm_rms_epsilon': ['f32', Math.fround(tc.rms_norm_eps)],
      'tokenizer.ggml.model': ['string', 'llama'],
      'tokenizer.ggml.pre': ['string', 'default'],
      'tokenizer.ggml.bos_token_id': ['u32', 2],
      'tokenizer.ggml.eos_token_id': ['u32', 1],
      'tokenizer.ggml.unknown_token_id': ['u32', 3],
      'tokenizer.ggml.padding_token_id': ['u32', 0],
      'tokenizer.ggml.add_bos_token': ['bool', true],
      'tokenizer.ggml.add_eos_token': ['bool', false],
      'tokenizer.ggml.add_space_prefix': ['bool', false],
    };
    const arrays = ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type'];
    expect([...text.metadata.keys()].sort()).toEqual([...Object.keys(want), ...arrays].sort());
    for (const [key, value] of Object.entries(want)) expect(plain(text.metadata.get(key)), key).toEqual(value);
    const types = { 'tokenizer.ggml.tokens': 'string', 'tokenizer.ggml.scores': 'f32', 'tokenizer.ggml.token_type': 'i32' } as const;
    for (const [key, itemType] of Object.entries(types)) {
      const v = text.metadata.get(key)!;
      expect(v.type === 'array' && v.itemType, key).toBe(itemType);
      expect((v.value as ArrayLike<unknown>).length, key).toBe(257216); // padded to the embedding's rows
    }
  });

  it('text tensors: published names, reversed dims, F32 norms with +1 folded in, weights correctly converted', () => {
    checkTensors(files.get(outType)!.text, expectedTextTensors(config.text_config.num_hidden_layers), outType);
  });

  it('projector metadata (docs/FORMAT.md)', () => {
    const { projector } = files.get(outType)!;
    const vc = config.vision_config;
    const want: Record<string, [string, unknown]> = {
      'general.architecture': ['string', 'clip'],
      'general.type': ['string', 'mmproj'],
      'general.name': ['string', 'paligemma-tiny'],
      'general.file_type': ['u32', FILE_TYPE[outType]],
      'clip.projector_type': ['string', 'paligemma'],
      'clip.has_vision_encoder': ['bool', true],
      'clip.has_text_encoder': ['bool', false],
      'clip.use_gelu': ['bool', true],
      'clip.vision.image_size': ['u32', vc.image_size],
      'clip.vision.patch_size': ['u32', vc.patch_size],
      'clip.vision.embedding_length': ['u32', vc.hidden_size],
      'clip.vision.feed_forward_length': ['u32', vc.intermediate_size],
      'clip.vision.block_count': ['u32', vc.num_hidden_layers],
      'clip.vision.attention.head_count': ['u32', vc.num_attention_heads],
      'clip.vision.attention.layer_norm_epsilon': ['f32', Math.fround(vc.layer_norm_eps)],
      'clip.vision.projection_dim': ['u32', config.projection_dim],
      'clip.vision.image_mean': ['array:f32', [0.5, 0.5, 0.5]],
      'clip.vision.image_std': ['array:f32', [0.5, 0.5, 0.5]],
    };
    expect([...projector.metadata.keys()].sort()).toEqual(Object.keys(want).sort());
    for (const [key, value] of Object.entries(want)) expect(plain(projector.metadata.get(key)), key).toEqual(value);
  });

  it('projector tensors: SigLIP + mm.0, patch embedding ne = [p, p, 3, hidden], F32 position embedding', () => {
    const { projector } = files.get(outType)!;
    checkTensors(projector, expectedProjectorTensors(config.vision_config.num_hidden_layers), outType);
    expect(projector.tensorsByName.get('v.patch_embd.weight')!.dims).toEqual([14, 14, 3, 32]);
    expect(projector.tensorsByName.get('mm.0.weight')!.dims).toEqual([32, 48]);
  });
});

describe('vocabulary of the converted fixture', () => {
  const tokJson = JSON.parse(readFileSync(path.join(fixtureDir, 'tokenizer.json'), 'utf8'));
  const arr = (g: GGUFFile, key: string) => g.metadata.get(key)!.value as unknown as ArrayLike<unknown>;

  it('pieces are tokenizer.json\'s by id (id 226 as <0x09>), types follow the Gemma rules, padding is UNUSED', () => {
    const text = files.get('f16')!.text;
    const tokens = arr(text, 'tokenizer.ggml.tokens') as string[];
    const types = arr(text, 'tokenizer.ggml.token_type') as Int32Array;
    const byId: string[] = [];
    for (const [piece, id] of Object.entries(tokJson.model.vocab as Record<string, number>)) byId[id] = piece;
    for (const t of tokJson.added_tokens as { id: number; content: string }[]) byId[t.id] = t.content;
    byId[226] = '<0x09>';
    expect(tokens.slice(0, byId.length)).toEqual(byId);
    expect(tokens[257153]).toBe('[PAD257153]');
    const want: [number, number][] = [[0, 3], [1, 3], [2, 3], [3, 2], [4, 4], [216, 4], [217, 6], [226, 6], [472, 6],
      [255968, 4], [255999, 4], [256000, 4], [257151, 4], [257152, 4], [257153, 5], [257215, 5], [1000, 1]];
    for (const [id, type] of want) expect(types[id], `type of ${id} ${tokens[id]}`).toBe(type);
  });

  it('the tokenizer built from the converted file encodes the golden prompts like the fixture\'s tokenizer', async () => {
    const tok = Tokenizer.fromGGUF(files.get('f16')!.text);
    const inputs = JSON.parse(readFileSync(path.join(fixtureDir, 'golden/inputs.json'), 'utf8'));
    const imageId = config.image_token_index;
    for (const c of inputs.cases as { prompt: string; input_ids: number[] }[]) {
      const ids = [...Array(inputs.num_image_tokens).fill(imageId), ...tok.encode(c.prompt), ...tok.encode('\n', { addBos: false })];
      expect(ids, c.prompt).toEqual(c.input_ids);
    }
  });

  // The ground truth was made with Gemma's 256000 pieces only; strings with PaliGemma's added pieces
  // (<locNNNN>, <segNNN>, <image>) tokenize differently by design (whole pieces) and are left out.
  it('and matches the SentencePiece ground truth for the Gemma pieces', () => {
    const tok = Tokenizer.fromGGUF(files.get('f32')!.text);
    const truth = JSON.parse(readFileSync(path.resolve(fixtureDir, '../tokenizer/sentencepiece-gemma.json'), 'utf8'));
    let n = 0;
    for (const cases of Object.values(truth.sets as Record<string, { text: string; ids: number[] }[]>)) {
      for (const c of cases) {
        if (/<loc\d{4}>|<seg\d{3}>|<image>/.test(c.text)) continue;
        expect(tok.encode(c.text, { addBos: false }), JSON.stringify(c.text)).toEqual(c.ids);
        n++;
      }
    }
    expect(n).toBeGreaterThan(390);
  });
});
