/**
 * Test helpers for the converter: a safetensors writer, a SentencePiece ModelProto encoder and a generator
 * of small random Hugging Face PaliGemma checkpoints (config.json, safetensors — single or sharded —,
 * tokenizer.model, tokenizer_config.json, preprocessor_config.json). Written independently of lib/convert,
 * so the tests' expectations do not come from the code under test.
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { edgeBits } from './float-ref.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const fixtureDir = path.resolve(projectRoot, 'test/fixtures/paligemma-tiny');

/** A deterministic uniform [0, 1) generator, so failures reproduce (the library's own). */
import { seededRandom as prng } from '../../lib/model/sampling.js';
export { prng };

// ---------------------------------------------------------------------------------------------------
// safetensors

/** A tensor to write. `data` undefined leaves a hole (zeros, sparse on disk). */
export interface STEntry {
  name: string;
  dtype: string;
  shape: number[];
  data?: Uint8Array;
  /** Byte size when `data` is absent. */
  size?: number;
}

const ITEM_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I8: 1, U8: 1 };

/** Byte size of a tensor: elements × dtype size. */
export function entryBytes(e: Pick<STEntry, 'dtype' | 'shape'>): number {
  return e.shape.reduce((a, b) => a * b, 1) * (ITEM_BYTES[e.dtype] ?? 4);
}

/** The JSON header of a safetensors file for `entries`, laid out back to back. */
export function safetensorsHeader(entries: STEntry[], metadata?: Record<string, string>): Record<string, unknown> {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let at = 0;
  for (const e of entries) {
    const size = e.data?.byteLength ?? e.size ?? entryBytes(e);
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [at, at + size] };
    at += size;
  }
  return header;
}

/** Encodes a header object (padded with spaces to a multiple of 8, as the reference writer does) plus data. */
export function encodeSafetensors(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const jsonBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + jsonBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  out.set(data, 8 + jsonBytes.length);
  return out;
}

/** Writes a safetensors file; entries without data become holes. */
export function writeSafetensors(file: string, entries: STEntry[], metadata?: Record<string, string>): void {
  const head = encodeSafetensors(safetensorsHeader(entries, metadata));
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, head);
    let at = head.length;
    for (const e of entries) {
      const size = e.data?.byteLength ?? e.size ?? entryBytes(e);
      if (e.data) writeSync(fd, e.data, 0, e.data.length, at);
      at += size;
    }
    ftruncateSync(fd, at);
  } finally {
    closeSync(fd);
  }
}

/** Parses a safetensors file with a few lines of code (whole file in memory: for small test files only). */
export function readSafetensorsSimple(file: string): Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }> {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const bytes = new Uint8Array(buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1])); // aligned copy
    out.set(name, { dtype: e.dtype, shape: e.shape, bytes });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// SentencePiece ModelProto

/** One SentencePiece entry. Types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
export interface SPPiece {
  piece: string;
  score: number;
  type: number;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

const key = (field: number, wire: number) => varint(field * 8 + wire);
const lenField = (field: number, payload: ArrayLike<number>) => [...key(field, 2), ...varint(payload.length), ...Array.from(payload)];

/**
 * Encodes a ModelProto: the pieces (field 1), plus — to exercise skipping — a trainer_spec (field 2) and a
 * normalizer_spec (field 3, add_dummy_prefix false), and inside each piece an unknown fixed64 field.
 * A piece with type 1 and score 0 omits those fields, as protobuf does for defaults.
 */
export function encodeSentencePieceModel(pieces: SPPiece[], options: { extras?: boolean } = {}): Uint8Array {
  const bytes: number[] = [];
  for (const p of pieces) {
    const msg: number[] = [...lenField(1, Buffer.from(p.piece, 'utf8'))];
    if (!Object.is(p.score, 0)) {
      const f = Buffer.alloc(4);
      f.writeFloatLE(p.score);
      msg.push(...key(2, 5), ...f);
    }
    if (p.type !== 1) msg.push(...key(3, 0), ...varint(p.type));
    if (options.extras) msg.push(...key(9, 1), 1, 2, 3, 4, 5, 6, 7, 8);
    bytes.push(...lenField(1, msg));
    if (options.extras && bytes.length < 200) {
      bytes.push(...lenField(2, [...key(3, 0), ...varint(300), ...lenField(1, Buffer.from('model_prefix'))])); // trainer_spec
      bytes.push(...lenField(3, [...lenField(1, Buffer.from('identity')), ...key(3, 0), 0])); // normalizer_spec
    }
  }
  return Uint8Array.from(bytes);
}

/**
 * A small Gemma-like vocabulary: <pad> <eos> <bos> <unk>, a few user-defined pieces, the 256 byte pieces,
 * the letters and some merged pieces with scores (higher merges first), and PaliGemma-style loc/seg pieces.
 */
export function tinySentencePieceVocab(): SPPiece[] {
  const pieces: SPPiece[] = [
    { piece: '<pad>', score: 0, type: 3 },
    { piece: '<eos>', score: 0, type: 3 },
    { piece: '<bos>', score: 0, type: 3 },
    { piece: '<unk>', score: 0, type: 2 },
    { piece: '<mask>', score: 0, type: 4 },
    { piece: '<start_of_turn>', score: 0, type: 4 },
  ];
  for (let b = 0; b < 256; b++) pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: 6 });
  const merged = ['▁t', 'he', '▁the', 'in', '▁a', 'an', '▁c', 'at', '▁cat', 'ca', 'ti', 'on', 'en', '▁en', 'ap', 'tion', 'cap', 'caption'];
  merged.forEach((p, i) => pieces.push({ piece: p, score: 0 - i + 0, type: 1 })); // + 0: no -0
  const letters = [...'▁abcdefghijklmnopqrstuvwxyz\n'];
  letters.forEach((p, i) => pieces.push({ piece: p, score: -100 - i, type: 1 }));
  for (let i = 0; i < 4; i++) pieces.push({ piece: `<loc${String(i).padStart(4, '0')}>`, score: 0, type: 4 });
  for (let i = 0; i < 2; i++) pieces.push({ piece: `<seg${String(i).padStart(3, '0')}>`, score: 0, type: 4 });
  return pieces;
}

// ---------------------------------------------------------------------------------------------------
// HF PaliGemma checkpoints

export interface TinySpec {
  text: { hidden: number; intermediate: number; layers: number; heads: number; kvHeads: number; headDim: number; vocab: number };
  vision: { hidden: number; intermediate: number; layers: number; heads: number; imageSize: number; patchSize: number };
  /** Element type of every tensor (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Split into this many shards with an index (default 1: model.safetensors). */
  shards?: number;
  /** Use transformers ≥ 4.52 names (`model.language_model.*` …). */
  newNames?: boolean;
  /** Dotted config keys to delete, e.g. `text_config.head_dim`. */
  omitConfigKeys?: string[];
  /** Tensors (HF names) left as holes of zeros instead of random data: for huge tensors. */
  holes?: (name: string) => boolean;
  seed?: number;
  /** tokenizer.model pieces (default `tinySentencePieceVocab()`); null writes no tokenizer.model. */
  pieces?: SPPiece[] | null;
  /** Added tokens for tokenizer_config.json's added_tokens_decoder. */
  addedTokens?: Record<number, { content: string; special: boolean }>;
}

/** A generated tensor as written (PyTorch shape, little-endian bytes; undefined bytes for a hole). */
export interface GeneratedTensor {
  dtype: string;
  shape: number[];
  bytes?: Uint8Array;
}

/** HF tensor names and PyTorch shapes for a spec, in the order transformers lists them. */
export function hfTensorShapes(spec: TinySpec): [string, number[]][] {
  const { text: t, vision: v } = spec;
  const out: [string, number[]][] = [];
  const vm = 'vision_tower.vision_model';
  out.push([`${vm}.embeddings.patch_embedding.weight`, [v.hidden, 3, v.patchSize, v.patchSize]]);
  out.push([`${vm}.embeddings.patch_embedding.bias`, [v.hidden]]);
  out.push([`${vm}.embeddings.position_embedding.weight`, [(v.imageSize / v.patchSize) ** 2, v.hidden]]);
  for (let i = 0; i < v.layers; i++) {
    const l = `${vm}.encoder.layers.${i}`;
    for (const n of ['layer_norm1', 'layer_norm2']) out.push([`${l}.${n}.weight`, [v.hidden]], [`${l}.${n}.bias`, [v.hidden]]);
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) out.push([`${l}.self_attn.${n}.weight`, [v.hidden, v.hidden]], [`${l}.self_attn.${n}.bias`, [v.hidden]]);
    out.push([`${l}.mlp.fc1.weight`, [v.intermediate, v.hidden]], [`${l}.mlp.fc1.bias`, [v.intermediate]]);
    out.push([`${l}.mlp.fc2.weight`, [v.hidden, v.intermediate]], [`${l}.mlp.fc2.bias`, [v.hidden]]);
  }
  out.push([`${vm}.post_layernorm.weight`, [v.hidden]], [`${vm}.post_layernorm.bias`, [v.hidden]]);
  out.push(['multi_modal_projector.linear.weight', [t.hidden, v.hidden]], ['multi_modal_projector.linear.bias', [t.hidden]]);
  out.push(['language_model.model.embed_tokens.weight', [t.vocab, t.hidden]]);
  for (let i = 0; i < t.layers; i++) {
    const l = `language_model.model.layers.${i}`;
    out.push([`${l}.self_attn.q_proj.weight`, [t.heads * t.headDim, t.hidden]]);
    out.push([`${l}.self_attn.k_proj.weight`, [t.kvHeads * t.headDim, t.hidden]]);
    out.push([`${l}.self_attn.v_proj.weight`, [t.kvHeads * t.headDim, t.hidden]]);
    out.push([`${l}.self_attn.o_proj.weight`, [t.hidden, t.heads * t.headDim]]);
    out.push([`${l}.mlp.gate_proj.weight`, [t.intermediate, t.hidden]]);
    out.push([`${l}.mlp.up_proj.weight`, [t.intermediate, t.hidden]]);
    out.push([`${l}.mlp.down_proj.weight`, [t.hidden, t.intermediate]]);
    out.push([`${l}.input_layernorm.weight`, [t.hidden]], [`${l}.post_attention_layernorm.weight`, [t.hidden]]);
  }
  out.push(['language_model.model.norm.weight', [t.hidden]]);
  return out;
}

/** transformers ≥ 4.52 name of an old-layout name. */
export function newStyleName(name: string): string {
  if (name.startsWith('language_model.model.')) return `model.language_model.${name.slice('language_model.model.'.length)}`;
  return `model.${name}`;
}

/** Random tensor bytes: F32 gaussian-ish values (with edge values first), or random finite F16/BF16 patterns. */
function randomBytes(dtype: string, count: number, rand: () => number, withEdges: boolean): Uint8Array {
  if (dtype === 'F32') {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = (rand() + rand() + rand() - 1.5) * 0.6;
    const bits = new Uint32Array(out.buffer);
    if (withEdges) edgeBits().slice(0, count).forEach((b, i) => (bits[i] = b));
    return new Uint8Array(out.buffer);
  }
  const out = new Uint16Array(count);
  for (let i = 0; i < count; i++) {
    const sign = rand() < 0.5 ? 0x8000 : 0;
    // Exponents around 1.0 mostly, some subnormals/zeros; never the all-ones (inf/NaN) exponent.
    if (dtype === 'F16') out[i] = sign | (Math.floor(rand() * 31) << 10) | Math.floor(rand() * 1024);
    else out[i] = sign | ((100 + Math.floor(rand() * 50)) << 7) | Math.floor(rand() * 128);
  }
  return new Uint8Array(out.buffer);
}

/** The config.json of a spec (all keys present; `omitConfigKeys` applies in `writeHFCheckpoint`). */
export function tinyConfig(spec: TinySpec): Record<string, any> {
  const { text: t, vision: v } = spec;
  return {
    architectures: ['PaliGemmaForConditionalGeneration'],
    model_type: 'paligemma',
    bos_token_id: 2, eos_token_id: 1, pad_token_id: 0,
    hidden_size: t.hidden, projection_dim: t.hidden, image_token_index: t.vocab - 1,
    text_config: {
      model_type: 'gemma', hidden_size: t.hidden, intermediate_size: t.intermediate, num_hidden_layers: t.layers,
      num_attention_heads: t.heads, num_key_value_heads: t.kvHeads, head_dim: t.headDim, vocab_size: t.vocab,
      rms_norm_eps: 1e-6, rope_theta: 10000.0, max_position_embeddings: 8192, hidden_activation: 'gelu_pytorch_tanh',
    },
    vision_config: {
      model_type: 'siglip_vision_model', hidden_size: v.hidden, intermediate_size: v.intermediate, num_hidden_layers: v.layers,
      num_attention_heads: v.heads, image_size: v.imageSize, patch_size: v.patchSize, layer_norm_eps: 1e-6,
      projection_dim: t.hidden, projector_hidden_act: 'gelu_fast', vision_use_head: false,
    },
  };
}

/**
 * Writes a random checkpoint for `spec` into `dir` and returns what was written: the config and every
 * tensor by its old-layout HF name.
 */
export function writeHFCheckpoint(dir: string, spec: TinySpec): { config: Record<string, any>; tensors: Map<string, GeneratedTensor> } {
  mkdirSync(dir, { recursive: true });
  const rand = prng(spec.seed ?? 1234);
  const dtype = spec.dtype ?? 'F32';
  const config = tinyConfig(spec);
  for (const dotted of spec.omitConfigKeys ?? []) {
    const parts = dotted.split('.');
    let obj = config;
    for (const p of parts.slice(0, -1)) obj = obj[p];
    delete obj[parts.at(-1)!];
  }
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));

  const tensors = new Map<string, GeneratedTensor>();
  const entries: STEntry[] = [];
  for (const [name, shape] of hfTensorShapes(spec)) {
    const count = shape.reduce((a, b) => a * b, 1);
    const hole = spec.holes?.(name) === true;
    const edges = name.endsWith('mlp.gate_proj.weight') || name.endsWith('input_layernorm.weight');
    const bytes = hole ? undefined : randomBytes(dtype, count, rand, edges);
    tensors.set(name, { dtype, shape, bytes });
    entries.push({ name: spec.newNames ? newStyleName(name) : name, dtype, shape, data: bytes, size: count * ITEM_BYTES[dtype]! });
  }
  const shards = spec.shards ?? 1;
  if (shards <= 1) {
    writeSafetensors(path.join(dir, 'model.safetensors'), entries, { format: 'pt' });
  } else {
    const weightMap: Record<string, string> = {};
    const per = Math.ceil(entries.length / shards);
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = entries.slice(s * per, (s + 1) * per);
      writeSafetensors(path.join(dir, file), part, { format: 'pt' });
      for (const e of part) weightMap[e.name] = file;
    }
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  }
  if (spec.pieces !== null) writeFileSync(path.join(dir, 'tokenizer.model'), encodeSentencePieceModel(spec.pieces ?? tinySentencePieceVocab(), { extras: true }));
  const added: Record<string, unknown> = {};
  for (const [id, t] of Object.entries(spec.addedTokens ?? {})) added[id] = { ...t, lstrip: false, rstrip: false, normalized: false, single_word: false };
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ add_bos_token: true, add_eos_token: false, added_tokens_decoder: added }));
  writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify({ image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] }));
  return { config, tensors };
}

// ---------------------------------------------------------------------------------------------------
// Expectations for converted files, written from the rules of the issue (not from lib/convert)

/** How a GGUF tensor is derived: `weight` in the output type, `f32` kept F32, `norm` = F32 1 + w. */
export type Rule = 'weight' | 'f32' | 'norm';

/** The text GGUF's tensors: [gguf name, HF name, rule]. */
export function expectedTextTensors(layers: number): [string, string, Rule][] {
  const out: [string, string, Rule][] = [['token_embd.weight', 'language_model.model.embed_tokens.weight', 'weight']];
  for (let i = 0; i < layers; i++) {
    const l = `language_model.model.layers.${i}`;
    out.push(
      [`blk.${i}.attn_norm.weight`, `${l}.input_layernorm.weight`, 'norm'],
      [`blk.${i}.attn_q.weight`, `${l}.self_attn.q_proj.weight`, 'weight'],
      [`blk.${i}.attn_k.weight`, `${l}.self_attn.k_proj.weight`, 'weight'],
      [`blk.${i}.attn_v.weight`, `${l}.self_attn.v_proj.weight`, 'weight'],
      [`blk.${i}.attn_output.weight`, `${l}.self_attn.o_proj.weight`, 'weight'],
      [`blk.${i}.ffn_norm.weight`, `${l}.post_attention_layernorm.weight`, 'norm'],
      [`blk.${i}.ffn_gate.weight`, `${l}.mlp.gate_proj.weight`, 'weight'],
      [`blk.${i}.ffn_up.weight`, `${l}.mlp.up_proj.weight`, 'weight'],
      [`blk.${i}.ffn_down.weight`, `${l}.mlp.down_proj.weight`, 'weight'],
    );
  }
  out.push(['output_norm.weight', 'language_model.model.norm.weight', 'norm']);
  return out;
}

/** The projector GGUF's tensors (docs/FORMAT.md): [gguf name, HF name, rule]. */
export function expectedProjectorTensors(layers: number): [string, string, Rule][] {
  const e = 'vision_tower.vision_model.embeddings';
  const out: [string, string, Rule][] = [
    ['v.patch_embd.weight', `${e}.patch_embedding.weight`, 'weight'],
    ['v.patch_embd.bias', `${e}.patch_embedding.bias`, 'f32'],
    ['v.position_embd.weight', `${e}.position_embedding.weight`, 'f32'],
  ];
  for (let i = 0; i < layers; i++) {
    const l = `vision_tower.vision_model.encoder.layers.${i}`;
    const pairs: [string, string, boolean][] = [
      ['attn_q', 'self_attn.q_proj', true], ['attn_k', 'self_attn.k_proj', true], ['attn_v', 'self_attn.v_proj', true],
      ['attn_out', 'self_attn.out_proj', true], ['ln1', 'layer_norm1', false], ['ln2', 'layer_norm2', false],
      ['ffn_up', 'mlp.fc1', true], ['ffn_down', 'mlp.fc2', true],
    ];
    for (const [g, h, matrix] of pairs) {
      out.push([`v.blk.${i}.${g}.weight`, `${l}.${h}.weight`, matrix ? 'weight' : 'f32'], [`v.blk.${i}.${g}.bias`, `${l}.${h}.bias`, 'f32']);
    }
  }
  out.push(
    ['v.post_ln.weight', 'vision_tower.vision_model.post_layernorm.weight', 'f32'],
    ['v.post_ln.bias', 'vision_tower.vision_model.post_layernorm.bias', 'f32'],
    ['mm.0.weight', 'multi_modal_projector.linear.weight', 'weight'],
    ['mm.0.bias', 'multi_modal_projector.linear.bias', 'f32'],
  );
  return out;
}
