/**
 * The projector file's tensors (arch `clip`, docs/FORMAT.md): the SigLIP vision tower and PaliGemma's
 * linear projector, one row per tensor under the canonical names. lib/model/files.ts maps the
 * variants seen in the wild (`mm.input_projection`, swapped FFN names) onto them; the native loader
 * (native/model/load.cc) binds the same names to its layer struct. 1-D tensors (biases, LayerNorm
 * parameters) and the position embedding stay F32, as llama.cpp stores them.
 */
import type { TensorFields, TensorRow, TensorTable } from './table.js';

/** Dimensions of the tower's tensors. */
export type SiglipDim =
  | 'hidden'
  | 'ffn'
  | 'patch'
  | 'channels'
  /** Patches per image: (image size / patch size)². */
  | 'patches'
  /** Projector output width = the text model's hidden size. */
  | 'projection';

type Row = TensorRow<SiglipDim>;

/** A linear layer or a norm: its weight (`weight` type rule for matrices) and its F32 bias. */
function pair<K extends string>(key: K, gguf: string, hf: string, dims: readonly SiglipDim[]) {
  const type = dims.length > 1 ? 'weight' : 'f32';
  return [
    { key, part: 'weight', gguf: `${gguf}.weight`, hf: `${hf}.weight`, dims, type },
    { key, part: 'bias', gguf: `${gguf}.bias`, hf: `${hf}.bias`, dims: [dims.at(-1)!], type: 'f32' },
  ] as const satisfies readonly Row[];
}

const embeddings = 'vision_tower.vision_model.embeddings';

export const SIGLIP = {
  blockPrefix: { gguf: 'v.blk.{i}.', hf: 'vision_tower.vision_model.encoder.layers.{i}.' },
  first: [
    // Conv2d with kernel = stride = patch: PyTorch [hidden, channels, patch, patch].
    ...pair('patchEmbd', 'v.patch_embd', `${embeddings}.patch_embedding`, ['patch', 'patch', 'channels', 'hidden']),
    { key: 'positionEmbd', gguf: 'v.position_embd.weight', hf: `${embeddings}.position_embedding.weight`, dims: ['hidden', 'patches'], type: 'f32' },
  ],
  block: [
    ...pair('attnQ', 'attn_q', 'self_attn.q_proj', ['hidden', 'hidden']),
    ...pair('attnK', 'attn_k', 'self_attn.k_proj', ['hidden', 'hidden']),
    ...pair('attnV', 'attn_v', 'self_attn.v_proj', ['hidden', 'hidden']),
    ...pair('attnOut', 'attn_out', 'self_attn.out_proj', ['hidden', 'hidden']),
    ...pair('ln1', 'ln1', 'layer_norm1', ['hidden']),
    ...pair('ln2', 'ln2', 'layer_norm2', ['hidden']),
    ...pair('ffnUp', 'ffn_up', 'mlp.fc1', ['hidden', 'ffn']), // fc1, whatever a file calls it
    ...pair('ffnDown', 'ffn_down', 'mlp.fc2', ['ffn', 'hidden']), // fc2
  ],
  last: [
    ...pair('postLn', 'v.post_ln', 'vision_tower.vision_model.post_layernorm', ['hidden']),
    ...pair('projector', 'mm.0', 'multi_modal_projector.linear', ['hidden', 'projection']),
  ],
  explain: {
    gguf: {
      hidden: 'embedding_length', ffn: 'feed_forward_length', patch: 'patch_size', channels: 'channels',
      patches: '(image_size / patch_size)²', projection: 'projection_dim',
    },
    hf: {
      hidden: 'vision hidden_size', ffn: 'vision intermediate_size', patch: 'patch_size', channels: 'num_channels',
      patches: '(image_size / patch_size)²', projection: 'projection_dim',
    },
  },
} as const satisfies TensorTable<SiglipDim>;

/** One tower block's tensors, by field. `ffnUp` is always fc1 (hidden → ffn) and `ffnDown` fc2. */
export type SiglipBlockFields<T> = TensorFields<(typeof SIGLIP.block)[number], T>;
/** The tensors outside the blocks, by field. */
export type SiglipGlobalFields<T> = TensorFields<(typeof SIGLIP.first)[number] | (typeof SIGLIP.last)[number], T>;
