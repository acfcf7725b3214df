/**
 * The tensor plan: which Hugging Face tensor becomes which GGUF tensor, the PyTorch shape config.json
 * implies for it, and how it is stored. The one place that knows both naming schemes.
 *
 * GGUF dims are the PyTorch shape reversed, and the bytes are copied in order (row-major [out, in] is
 * ggml's ne = [in, out]), so no tensor is transposed. In particular q_proj/k_proj are NOT permuted:
 * HF Gemma applies RoPE with `rotate_half`, pairing element i with i + head_dim/2 inside each head, and
 * llama.cpp runs arch `gemma` with NeoX-mode RoPE, which pairs exactly those elements. (The permutation
 * llama.cpp applies to LLaMA exists because LLaMA runs in normal mode, pairing 2i with 2i+1.)
 */
import type { PaliGemmaConfig } from './config.js';
import { ConvertError } from './errors.js';
import type { SafetensorsCheckpoint, SafetensorsTensor } from './safetensors.js';

/** One GGUF tensor and where it comes from. */
export interface TensorMapping {
  /** Name in the GGUF file. */
  gguf: string;
  /** Name in the Hugging Face checkpoint (transformers ≤ 4.51 layout). */
  hf: string;
  /** PyTorch shape config.json implies. */
  shape: number[];
  /** Which config keys give that shape, for error messages. */
  from: string;
  /** `outtype`: stored in the requested type; `F32`: always F32 (norms, biases, position embedding). */
  storage: 'outtype' | 'F32';
  /** Store `1 + w`: Gemma's RMSNorm scales by (1 + weight); GGUF files carry the sum. */
  addOne: boolean;
}

/** Tensors a checkpoint may carry that the GGUF files do not need: the output head is tied to the embedding. */
const IGNORED = new Set(['language_model.lm_head.weight']);

/**
 * transformers ≥ 4.52 saves PaliGemma as `model.language_model.*`, `model.vision_tower.*`,
 * `model.multi_modal_projector.*`, `lm_head.*`; map those names onto the older layout.
 */
export function canonicalTensorName(name: string): string {
  if (name.startsWith('model.language_model.')) return `language_model.model.${name.slice('model.language_model.'.length)}`;
  if (name.startsWith('model.vision_tower.')) return name.slice('model.'.length);
  if (name.startsWith('model.multi_modal_projector.')) return name.slice('model.'.length);
  if (name.startsWith('lm_head.')) return `language_model.${name}`;
  return name;
}

/** The text GGUF's tensors, in file order. */
export function textTensorPlan(cfg: PaliGemmaConfig): TensorMapping[] {
  const { hiddenSize: h, intermediateSize: ff, numHeads, numKvHeads, headDim, vocabSize } = cfg.text;
  const plan: TensorMapping[] = [];
  const add = (gguf: string, hf: string, shape: number[], from: string, norm = false) =>
    plan.push({ gguf, hf, shape, from, storage: norm ? 'F32' : 'outtype', addOne: norm });
  add('token_embd.weight', 'language_model.model.embed_tokens.weight', [vocabSize, h], 'text vocab_size, hidden_size');
  const q = numHeads * headDim;
  const kv = numKvHeads * headDim;
  for (let i = 0; i < cfg.text.numLayers; i++) {
    const hf = `language_model.model.layers.${i}`;
    add(`blk.${i}.attn_norm.weight`, `${hf}.input_layernorm.weight`, [h], 'hidden_size', true);
    add(`blk.${i}.attn_q.weight`, `${hf}.self_attn.q_proj.weight`, [q, h], 'num_attention_heads × head_dim, hidden_size');
    add(`blk.${i}.attn_k.weight`, `${hf}.self_attn.k_proj.weight`, [kv, h], 'num_key_value_heads × head_dim, hidden_size');
    add(`blk.${i}.attn_v.weight`, `${hf}.self_attn.v_proj.weight`, [kv, h], 'num_key_value_heads × head_dim, hidden_size');
    add(`blk.${i}.attn_output.weight`, `${hf}.self_attn.o_proj.weight`, [h, q], 'hidden_size, num_attention_heads × head_dim');
    add(`blk.${i}.ffn_norm.weight`, `${hf}.post_attention_layernorm.weight`, [h], 'hidden_size', true);
    add(`blk.${i}.ffn_gate.weight`, `${hf}.mlp.gate_proj.weight`, [ff, h], 'intermediate_size, hidden_size');
    add(`blk.${i}.ffn_up.weight`, `${hf}.mlp.up_proj.weight`, [ff, h], 'intermediate_size, hidden_size');
    add(`blk.${i}.ffn_down.weight`, `${hf}.mlp.down_proj.weight`, [h, ff], 'hidden_size, intermediate_size');
  }
  add('output_norm.weight', 'language_model.model.norm.weight', [h], 'hidden_size', true);
  return plan;
}

/** The projector GGUF's tensors (SigLIP tower + linear projector), in file order; see docs/FORMAT.md. */
export function projectorTensorPlan(cfg: PaliGemmaConfig): TensorMapping[] {
  const { hiddenSize: h, intermediateSize: ff, numChannels: c, imageSize, patchSize: p } = cfg.vision;
  const plan: TensorMapping[] = [];
  const add = (gguf: string, hf: string, shape: number[], from: string, storage: TensorMapping['storage']) =>
    plan.push({ gguf, hf, shape, from, storage, addOne: false });
  // A weight/bias pair: 1-D biases (and LayerNorm parameters) stay F32, as llama.cpp stores them.
  const pair = (gguf: string, hf: string, out: number, inp: number | undefined, from: string) => {
    add(`${gguf}.weight`, `${hf}.weight`, inp === undefined ? [out] : [out, inp], from, inp === undefined ? 'F32' : 'outtype');
    add(`${gguf}.bias`, `${hf}.bias`, [out], from, 'F32');
  };
  const emb = 'vision_tower.vision_model.embeddings';
  add('v.patch_embd.weight', `${emb}.patch_embedding.weight`, [h, c, p, p], 'vision hidden_size, num_channels, patch_size, patch_size', 'outtype');
  add('v.patch_embd.bias', `${emb}.patch_embedding.bias`, [h], 'vision hidden_size', 'F32');
  const patches = (imageSize / p) ** 2;
  add('v.position_embd.weight', `${emb}.position_embedding.weight`, [patches, h], '(image_size / patch_size)², vision hidden_size', 'F32');
  for (let i = 0; i < cfg.vision.numLayers; i++) {
    const hf = `vision_tower.vision_model.encoder.layers.${i}`;
    const v = `v.blk.${i}`;
    pair(`${v}.attn_q`, `${hf}.self_attn.q_proj`, h, h, 'vision hidden_size');
    pair(`${v}.attn_k`, `${hf}.self_attn.k_proj`, h, h, 'vision hidden_size');
    pair(`${v}.attn_v`, `${hf}.self_attn.v_proj`, h, h, 'vision hidden_size');
    pair(`${v}.attn_out`, `${hf}.self_attn.out_proj`, h, h, 'vision hidden_size');
    pair(`${v}.ln1`, `${hf}.layer_norm1`, h, undefined, 'vision hidden_size');
    pair(`${v}.ln2`, `${hf}.layer_norm2`, h, undefined, 'vision hidden_size');
    pair(`${v}.ffn_up`, `${hf}.mlp.fc1`, ff, h, 'vision intermediate_size, hidden_size');
    pair(`${v}.ffn_down`, `${hf}.mlp.fc2`, h, ff, 'vision hidden_size, intermediate_size');
  }
  pair('v.post_ln', 'vision_tower.vision_model.post_layernorm', h, undefined, 'vision hidden_size');
  pair('mm.0', 'multi_modal_projector.linear', cfg.projectionDim, h, 'projection_dim, vision hidden_size');
  return plan;
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Checks the checkpoint against both plans: every planned tensor present with the implied shape, and
 * no tensor left over (a leftover means the config and the checkpoint disagree, e.g. on the layer
 * count). Returns the checkpoint's tensors keyed by their canonical (older-layout) names.
 */
export function checkCheckpoint(cfg: PaliGemmaConfig, checkpoint: SafetensorsCheckpoint): Map<string, SafetensorsTensor> {
  const byName = new Map<string, SafetensorsTensor>();
  for (const [name, t] of checkpoint.tensors) {
    const canonical = canonicalTensorName(name);
    const other = byName.get(canonical);
    if (other) throw new ConvertError('UNEXPECTED_TENSOR', `tensors "${other.name}" and "${name}" are the same tensor under two naming schemes`, checkpoint.dir);
    byName.set(canonical, t);
  }

  const planned = new Set<string>();
  for (const m of [...textTensorPlan(cfg), ...projectorTensorPlan(cfg)]) {
    planned.add(m.hf);
    const t = byName.get(m.hf);
    if (!t) throw new ConvertError('MISSING_TENSOR', `the checkpoint has no tensor "${m.hf}" (for ${m.gguf})`, checkpoint.dir);
    const same = t.shape.length === m.shape.length && t.shape.every((d, i) => d === m.shape[i]);
    if (!same) {
      throw new ConvertError(
        'SHAPE_MISMATCH',
        `tensor "${t.name}" has shape ${shapeText(t.shape)} but config.json implies ${shapeText(m.shape)} (${m.from})`,
        checkpoint.dir,
      );
    }
  }
  const leftover = [...byName.keys()].filter((n) => !planned.has(n) && !IGNORED.has(n));
  if (leftover.length > 0) {
    const shown = leftover.slice(0, 5).map((n) => `"${n}"`).join(', ');
    throw new ConvertError(
      'UNEXPECTED_TENSOR',
      `the checkpoint has ${leftover.length} tensor(s) config.json does not account for: ${shown}${leftover.length > 5 ? ', …' : ''} (do num_hidden_layers and vision_use_head match the checkpoint?)`,
      checkpoint.dir,
    );
  }
  return byName;
}
