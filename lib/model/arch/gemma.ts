/**
 * The Gemma decoder's tensors (the text GGUF, arch `gemma`): one row per tensor. The native loader
 * (native/model/load.cc) binds the same names to its layer struct.
 *
 * No tensor is transposed or permuted on conversion: GGUF dims are the PyTorch shape reversed and the
 * bytes are copied in order. In particular q_proj/k_proj keep their order: HF Gemma applies RoPE with
 * `rotate_half`, pairing element i with i + head_dim/2 inside each head, and llama.cpp runs arch `gemma`
 * with NeoX-mode RoPE, which pairs exactly those elements.
 */
import type { TensorFields, TensorTable } from './table.js';

/** Dimensions of the decoder's tensors. */
export type GemmaDim =
  | 'hidden'
  | 'ffn'
  | 'vocab'
  /** Query width: heads × key length. */
  | 'q'
  /** Key width: KV heads × key length. */
  | 'k'
  /** Value width: KV heads × value length. */
  | 'v'
  /** Attention output width: heads × value length. */
  | 'o';

/** The decoder's dimension sizes, from either source of a config. */
export interface GemmaSizes {
  hidden: number;
  ffn: number;
  vocab: number;
  heads: number;
  kvHeads: number;
  keyLength: number;
  valueLength: number;
}

export function gemmaDims(s: GemmaSizes): Record<GemmaDim, number> {
  return {
    hidden: s.hidden, ffn: s.ffn, vocab: s.vocab,
    q: s.heads * s.keyLength, k: s.kvHeads * s.keyLength, v: s.kvHeads * s.valueLength, o: s.heads * s.valueLength,
  };
}

export const GEMMA = {
  blockPrefix: { gguf: 'blk.{i}.', hf: 'language_model.model.layers.{i}.' },
  first: [
    // The input embedding, and the output matrix tied to it.
    { key: 'tokenEmbd', gguf: 'token_embd.weight', hf: 'language_model.model.embed_tokens.weight', dims: ['hidden', 'vocab'], type: 'weight' },
  ],
  block: [
    { key: 'attnNorm', gguf: 'attn_norm.weight', hf: 'input_layernorm.weight', dims: ['hidden'], type: 'f32', addOne: true },
    { key: 'attnQ', gguf: 'attn_q.weight', hf: 'self_attn.q_proj.weight', dims: ['hidden', 'q'], type: 'weight' },
    { key: 'attnK', gguf: 'attn_k.weight', hf: 'self_attn.k_proj.weight', dims: ['hidden', 'k'], type: 'weight' },
    { key: 'attnV', gguf: 'attn_v.weight', hf: 'self_attn.v_proj.weight', dims: ['hidden', 'v'], type: 'weight' },
    { key: 'attnOutput', gguf: 'attn_output.weight', hf: 'self_attn.o_proj.weight', dims: ['o', 'hidden'], type: 'weight' },
    { key: 'ffnNorm', gguf: 'ffn_norm.weight', hf: 'post_attention_layernorm.weight', dims: ['hidden'], type: 'f32', addOne: true },
    { key: 'ffnGate', gguf: 'ffn_gate.weight', hf: 'mlp.gate_proj.weight', dims: ['hidden', 'ffn'], type: 'weight' },
    { key: 'ffnUp', gguf: 'ffn_up.weight', hf: 'mlp.up_proj.weight', dims: ['hidden', 'ffn'], type: 'weight' },
    { key: 'ffnDown', gguf: 'ffn_down.weight', hf: 'mlp.down_proj.weight', dims: ['ffn', 'hidden'], type: 'weight' },
  ],
  last: [
    { key: 'outputNorm', gguf: 'output_norm.weight', hf: 'language_model.model.norm.weight', dims: ['hidden'], type: 'f32', addOne: true },
  ],
  explain: {
    gguf: {
      hidden: 'embedding_length', ffn: 'feed_forward_length', vocab: 'vocab',
      q: 'head_count × key_length', k: 'head_count_kv × key_length', v: 'head_count_kv × value_length', o: 'head_count × value_length',
    },
    hf: {
      hidden: 'hidden_size', ffn: 'intermediate_size', vocab: 'text vocab_size',
      q: 'num_attention_heads × head_dim', k: 'num_key_value_heads × head_dim', v: 'num_key_value_heads × head_dim', o: 'num_attention_heads × head_dim',
    },
  },
} as const satisfies TensorTable<GemmaDim>;

/** One decoder block's tensors, by field. */
export type GemmaBlockFields<T> = TensorFields<(typeof GEMMA.block)[number], T>;
/** The tensors outside the blocks, by field. */
export type GemmaGlobalFields<T> = TensorFields<(typeof GEMMA.first)[number] | (typeof GEMMA.last)[number], T>;
