/**
 * The tensor plan: which Hugging Face tensor becomes which GGUF tensor, the PyTorch shape config.json
 * implies for it, and how it is stored — read off the architectures' tensor tables
 * (lib/model/arch/). GGUF dims are the PyTorch shape reversed, and the bytes are copied in order (a
 * row-major [out, in] tensor is ggml's ne = [in, out]), so no tensor is transposed.
 */
import { GEMMA, gemmaDims } from '../model/arch/gemma.js';
import { SIGLIP, type SiglipDim } from '../model/arch/siglip.js';
import { explainDims, ggmlDims, placeTensors, type TensorTable } from '../model/arch/table.js';
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

/** A table's tensors for `blocks` blocks and the config's dimension sizes, as a plan. */
function plan<Dim extends string>(table: TensorTable<Dim>, blocks: number, sizes: Record<Dim, number>): TensorMapping[] {
  return placeTensors(table, blocks).map(({ row, gguf, hf }) => ({
    gguf,
    hf,
    shape: ggmlDims(row, sizes).reverse(),
    from: explainDims(row, table.explain.hf, 'torch'),
    storage: row.type === 'f32' ? 'F32' : 'outtype',
    addOne: row.addOne === true,
  }));
}

/** The text GGUF's tensors, in file order. */
export function textTensorPlan(cfg: PaliGemmaConfig): TensorMapping[] {
  const t = cfg.text;
  const sizes = gemmaDims({
    hidden: t.hiddenSize, ffn: t.intermediateSize, vocab: t.vocabSize, heads: t.numHeads, kvHeads: t.numKvHeads,
    keyLength: t.headDim, valueLength: t.headDim,
  });
  return plan(GEMMA, t.numLayers, sizes);
}

/** The projector GGUF's tensors (SigLIP tower + linear projector), in file order; see docs/FORMAT.md. */
export function projectorTensorPlan(cfg: PaliGemmaConfig): TensorMapping[] {
  const v = cfg.vision;
  const sizes: Record<SiglipDim, number> = {
    hidden: v.hiddenSize, ffn: v.intermediateSize, patch: v.patchSize, channels: v.numChannels,
    patches: (v.imageSize / v.patchSize) ** 2, projection: cfg.projectionDim,
  };
  return plan(SIGLIP, v.numLayers, sizes);
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
