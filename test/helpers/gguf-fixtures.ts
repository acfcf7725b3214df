import { closeSync, openSync, readSync } from 'node:fs';
/**
 * GGUF fixtures shared by tests and benchmarks: the metadata and tensor table of the published
 * paligemma-3b-mix-224 text model (GGUF arch `gemma`), without tensor data.
 */
import type { GGUFFile, GGUFTensorInput, GGUFValue, GGUFWriteInput } from '../../lib/gguf/index.js';

/** Shape facts of the PaliGemma text model (Gemma-2B). */
export const PALIGEMMA_TEXT = {
  vocabSize: 257216,
  hidden: 2048,
  blocks: 18,
  ffn: 16384,
  heads: 8,
  kvHeads: 1,
  headDim: 256,
  contextLength: 2048,
} as const;

/** Dimensions of a text model of the published layout (PALIGEMMA_TEXT's keys). */
export type TextShape = Record<keyof typeof PALIGEMMA_TEXT, number>;

/** A vocabulary in GGUF form: `tokenizer.ggml.tokens`, `.scores` and `.token_type`. */
export interface GGUFVocab {
  tokens: string[];
  scores: Float32Array;
  tokenTypes: Int32Array;
}

/** SentencePiece piece types as GGUF stores them in `tokenizer.ggml.token_type`. */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

const SYLLABLES = 'ka re mi to su na le po ri de an on el ing ter str ch th ou ai ve ba lo ne qu is or ex gr pl'.split(' ');

/**
 * A plausible 257216-entry PaliGemma vocabulary laid out like the real one: `<pad>` 0, `<eos>` 1, `<bos>` 2,
 * `<unk>` 3, `<mask>` 4 (typed normal with score 0, as in the published file), `<unusedN>` pieces, the 256
 * `<0xNN>` byte pieces from id 217, unique made-up word pieces (some with `▁`, some CJK) up to 255999, then
 * `<loc0000>`..`<loc1023>`, `<seg000>`..`<seg127>`, `<image>` and padding pieces. It is not the real vocabulary:
 * pass `vocab` to {@link paligemmaTextModelLayout} where real pieces matter.
 */
export function plausiblePaliGemmaVocab(): GGUFVocab {
  const n = PALIGEMMA_TEXT.vocabSize;
  const tokens = new Array<string>(n);
  const scores = new Float32Array(n);
  const tokenTypes = new Int32Array(n).fill(TOKEN_TYPE.normal);
  ['<pad>', '<eos>', '<bos>', '<unk>', '<mask>'].forEach((t, i) => (tokens[i] = t));
  tokenTypes.set([TOKEN_TYPE.control, TOKEN_TYPE.control, TOKEN_TYPE.control, TOKEN_TYPE.unknown], 0);
  for (let id = 5; id < 217; id++) tokens[id] = `<unused${id - 5}>`;
  for (let b = 0; b < 256; b++) {
    tokens[217 + b] = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    tokenTypes[217 + b] = TOKEN_TYPE.byte;
  }
  for (let id = 473; id < 256000; id++) {
    let word = '';
    for (let k = id - 473; ; k = Math.floor(k / SYLLABLES.length)) {
      word += SYLLABLES[k % SYLLABLES.length];
      if (k < SYLLABLES.length) break;
    }
    // The prefix alphabet is disjoint from the syllables', so every piece stays unique.
    const prefix = id % 11 === 0 ? String.fromCodePoint(0x4e00 + (id % 20902)) : id % 3 === 0 ? '' : '▁';
    tokens[id] = prefix + word;
    scores[id] = -(id - 473); // merge priority falls with the id, as in SentencePiece models
  }
  for (let i = 0; i < 1024; i++) tokens[256000 + i] = `<loc${String(i).padStart(4, '0')}>`;
  for (let i = 0; i < 128; i++) tokens[257024 + i] = `<seg${String(i).padStart(3, '0')}>`;
  tokens[257152] = '<image>';
  for (let id = 257153; id < n; id++) {
    tokens[id] = `[PAD${id}]`;
    tokenTypes[id] = TOKEN_TYPE.unused;
  }
  return { tokens, scores, tokenTypes };
}

/**
 * The metadata and tensor table of the published paligemma-3b-mix-224 text GGUF, with no tensor data
 * (written out it is a ~5.0e9-byte sparse file). Note the published file has no
 * `tokenizer.ggml.add_space_prefix` key. `vocab` replaces the made-up vocabulary; `shape` changes
 * dimensions (a vocabulary of another size must then be given too).
 */
export function paligemmaTextModelLayout(options: { vocab?: GGUFVocab; shape?: Partial<TextShape> } = {}): GGUFWriteInput {
  const { hidden, blocks, ffn, heads, kvHeads, headDim, contextLength, vocabSize } = { ...PALIGEMMA_TEXT, ...options.shape };
  const vocab = options.vocab ?? plausiblePaliGemmaVocab();
  const u32 = (value: number): GGUFValue => ({ type: 'u32', value });
  const metadata = new Map<string, GGUFValue>([
    ['general.architecture', { type: 'string', value: 'gemma' }],
    ['general.name', { type: 'string', value: 'paligemma-3b-mix-224' }],
    ['general.file_type', u32(1)], // mostly F16
    ['gemma.context_length', u32(contextLength)],
    ['gemma.embedding_length', u32(hidden)],
    ['gemma.block_count', u32(blocks)],
    ['gemma.feed_forward_length', u32(ffn)],
    ['gemma.attention.head_count', u32(heads)],
    ['gemma.attention.head_count_kv', u32(kvHeads)],
    ['gemma.attention.key_length', u32(headDim)],
    ['gemma.attention.value_length', u32(headDim)],
    ['gemma.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-6 }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: vocab.tokenTypes }],
    ['tokenizer.ggml.bos_token_id', u32(2)],
    ['tokenizer.ggml.eos_token_id', u32(1)],
    ['tokenizer.ggml.unknown_token_id', u32(3)],
    ['tokenizer.ggml.padding_token_id', u32(0)],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  ]);

  const tensors: GGUFTensorInput[] = [{ name: 'token_embd.weight', type: 'F16', dims: [hidden, vocabSize] }];
  for (let i = 0; i < blocks; i++) {
    const blk = `blk.${i}`;
    tensors.push(
      { name: `${blk}.attn_norm.weight`, type: 'F32', dims: [hidden] },
      { name: `${blk}.attn_q.weight`, type: 'F16', dims: [hidden, heads * headDim] },
      { name: `${blk}.attn_k.weight`, type: 'F16', dims: [hidden, kvHeads * headDim] },
      { name: `${blk}.attn_v.weight`, type: 'F16', dims: [hidden, kvHeads * headDim] },
      { name: `${blk}.attn_output.weight`, type: 'F16', dims: [heads * headDim, hidden] },
      { name: `${blk}.ffn_norm.weight`, type: 'F32', dims: [hidden] },
      { name: `${blk}.ffn_gate.weight`, type: 'F16', dims: [hidden, ffn] },
      { name: `${blk}.ffn_up.weight`, type: 'F16', dims: [hidden, ffn] },
      { name: `${blk}.ffn_down.weight`, type: 'F16', dims: [ffn, hidden] },
    );
  }
  tensors.push({ name: 'output_norm.weight', type: 'F32', dims: [hidden] });
  return { metadata, tensors };
}

/**
 * Builds GGUF bytes field by field, independently of the package's writer: for hand-made files (v2,
 * corrupt or hostile ones) and for checking the writer's output byte for byte. Little-endian throughout.
 */
export class GGUFBytes {
  private bytes: number[] = [];

  get length(): number {
    return this.bytes.length;
  }

  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.bytes.push(bytes[i]! & 0xff);
    return this;
  }

  u8(v: number): this {
    return this.raw([v]);
  }

  u32(v: number): this {
    return this.raw([v, v >>> 8, v >>> 16, v >>> 24]);
  }

  u64(v: number | bigint): this {
    const big = BigInt.asUintN(64, BigInt(v));
    for (let i = 0n; i < 8n; i++) this.bytes.push(Number((big >> (8n * i)) & 0xffn));
    return this;
  }

  f32(v: number): this {
    return this.raw(new Uint8Array(Float32Array.of(v).buffer));
  }

  /** A GGUF string: u64 byte length, then UTF-8 (or the given raw bytes, valid or not). */
  str(s: string | Uint8Array): this {
    const b = typeof s === 'string' ? new TextEncoder().encode(s) : s;
    return this.u64(b.length).raw(b);
  }

  /** Zero bytes up to the next multiple of `alignment`. */
  pad(alignment: number): this {
    while (this.bytes.length % alignment !== 0) this.bytes.push(0);
    return this;
  }

  /** The fixed header: magic, version, tensor count, KV count. */
  header(version: number, tensorCount: number | bigint, kvCount: number | bigint): this {
    return this.raw([0x47, 0x47, 0x55, 0x46]).u32(version).u64(tensorCount).u64(kvCount);
  }

  /** A tensor info entry. */
  tensorInfo(name: string | Uint8Array, dims: (number | bigint)[], typeId: number, offset: number | bigint): this {
    this.str(name).u32(dims.length);
    for (const d of dims) this.u64(d);
    return this.u32(typeId).u64(offset);
  }

  build(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** The stored bytes of tensor `name` of a GGUF file (read from its offset). */
export function tensorBytes(gguf: GGUFFile, name: string): Uint8Array {
  const t = gguf.tensorsByName.get(name)!;
  const out = new Uint8Array(t.size);
  const fd = openSync(gguf.path, 'r');
  try {
    readSync(fd, out, 0, t.size, t.offset);
  } finally {
    closeSync(fd);
  }
  return out;
}
