/**
 * Locating and validating a PaliGemma model's two GGUF files — the Gemma text model and the SigLIP
 * projector (docs/FORMAT.md) — from paths or an Ollama name. Only headers are read. Every hyperparameter
 * is checked against the tensor shapes, and the pair against each other, so a wrong or mismatched file
 * fails here with a clear error instead of deep inside the native code.
 */
import { readGGUF } from '../gguf/reader.js';
import { GGUFError } from '../gguf/errors.js';
import {
  getInteger, getNumber, getOptionalArray, getOptionalBool, getOptionalInteger, getOptionalNumber,
  getOptionalString, getString,
} from '../gguf/metadata.js';
import type { GGUFFile, GGUFTensorInfo } from '../gguf/types.js';
import { resolveOllamaModel } from '../ollama/store.js';
import type { OllamaModelFiles } from '../ollama/store.js';
import { GEMMA, gemmaDims, type GemmaBlockFields, type GemmaGlobalFields } from './arch/gemma.js';
import { SIGLIP, type SiglipBlockFields, type SiglipDim, type SiglipGlobalFields } from './arch/siglip.js';
import { blockPrefix, collectFields, explainDims, ggmlDims, KERNEL_WEIGHT_TYPES, type TensorRow, type TensorTable } from './arch/table.js';
import { ModelFilesError } from './errors.js';

export { ModelFilesError, type ModelFilesErrorCode } from './errors.js';

/** One Gemma block's tensors (the fields of lib/model/arch/gemma.ts). */
export type TextBlockTensors = GemmaBlockFields<GGUFTensorInfo>;

/** The text model (arch `gemma`), its hyperparameters checked against its tensors. */
export interface TextModelFile {
  path: string;
  gguf: GGUFFile;
  hiddenSize: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  keyLength: number;
  valueLength: number;
  feedForwardLength: number;
  /**
   * Positions a sequence may hold: `gemma.context_length`, at most {@link MAX_CONTEXT_LENGTH} (a file
   * may declare any number; memory is taken by what a call needs, not by this).
   */
  contextLength: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Rows of token_embd. */
  vocabSize: number;
  tensors: GemmaGlobalFields<GGUFTensorInfo> & {
    /** A separate output head, when the file has one (PaliGemma ties it to token_embd). */
    output?: GGUFTensorInfo;
    blocks: TextBlockTensors[];
  };
}

/**
 * One SigLIP block's tensors (the fields of lib/model/arch/siglip.ts). `ffnUp` is always fc1 (hidden →
 * ffn) and `ffnDown` fc2, whatever the file names them.
 */
export type VisionBlockTensors = SiglipBlockFields<GGUFTensorInfo>;

/** Variants of the projector file seen in the wild (docs/FORMAT.md). */
export interface ProjectorVariant {
  /** Name prefix of the linear projector: ours is `mm.0`. */
  projectorName: 'mm.0' | 'mm.input_projection';
  /** The file names fc1 `ffn_down` and fc2 `ffn_up` (identified by shape). */
  ffnNamesSwapped: boolean;
}

/** The projector (arch `clip`, projector_type `paligemma`): SigLIP tower + linear projector. */
export interface ProjectorFile {
  path: string;
  gguf: GGUFFile;
  imageSize: number;
  patchSize: number;
  /** (imageSize / patchSize)²: image tokens per image. */
  patchCount: number;
  channels: number;
  hiddenSize: number;
  feedForwardLength: number;
  blockCount: number;
  headCount: number;
  layerNormEps: number;
  /** Output width of the projector = the text model's hidden size. */
  projectionDim: number;
  imageMean: number[];
  imageStd: number[];
  variant: ProjectorVariant;
  /** Which variant was found, in words (empty for the standard layout). */
  notes: string[];
  tensors: SiglipGlobalFields<GGUFTensorInfo> & { blocks: VisionBlockTensors[] };
}

const dimsText = (d: readonly number[]) => `[${d.join(', ')}]`;

/** The most positions a sequence can have (native/model/load.cc's bound): a larger declared context length is used as this. */
export const MAX_CONTEXT_LENGTH = 2 ** 30;

/** Wraps metadata access so GGUFError MISSING_KEY / WRONG_TYPE become BAD_METADATA with the same text. */
function meta<T>(read: () => T, file: string): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof GGUFError) throw new ModelFilesError('BAD_METADATA', err.message.replace(`${file}: `, ''), file);
    throw err;
  }
}

/** Tensor lookup with checks against the file. */
class Tensors {
  constructor(private readonly gguf: GGUFFile) {}

  get(name: string): GGUFTensorInfo {
    const t = this.gguf.tensorsByName.get(name);
    if (!t) throw new ModelFilesError('MISSING_TENSOR', `tensor ${name} is missing`, this.gguf.path);
    return t;
  }

  /** `name` with ggml dims `dims` (ne0 first); `why` explains where the expectation comes from. */
  shaped(name: string, dims: number[], why: string): GGUFTensorInfo {
    const t = this.get(name);
    if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
      throw new ModelFilesError('BAD_SHAPE', `tensor ${name} has dims ${dimsText(t.dims)}, expected ${dimsText(dims)} (${why})`, this.gguf.path);
    }
    return t;
  }

  /**
   * The tensor of a table row, stored under `name`: the shape the row gives for `sizes`, and its type
   * rule. (The GGUF reader has checked that its rows are whole blocks of its type.)
   */
  row<Dim extends string>(table: TensorTable<Dim>, row: TensorRow<Dim>, name: string, sizes: Record<Dim, number>): GGUFTensorInfo {
    const t = this.shaped(name, ggmlDims(row, sizes), explainDims(row, table.explain.gguf, 'ggml'));
    if (row.type === 'f32' && t.type !== 'F32') {
      throw new ModelFilesError('BAD_TENSOR', `tensor ${name} is ${t.type}, expected F32 (the kernels read it as floats)`, this.gguf.path);
    }
    if (row.type === 'weight' && !KERNEL_WEIGHT_TYPES.includes(t.type)) {
      throw new ModelFilesError('BAD_TENSOR', `tensor ${name} is ${t.type}, which the kernels do not run (they run ${KERNEL_WEIGHT_TYPES.join(', ')})`, this.gguf.path);
    }
    return t;
  }
}

function checkArchitecture(gguf: GGUFFile, expected: 'gemma' | 'clip'): void {
  const arch = meta(() => getString(gguf, 'general.architecture'), gguf.path);
  if (arch === expected) return;
  const hint = arch === 'clip' ? ' — this is a projector file; pass it as the projector'
    : expected === 'clip' && arch === 'gemma' ? ' — this is a text model; pass it as the model, and the mmproj file as the projector'
    : '';
  throw new ModelFilesError('WRONG_ARCHITECTURE', `general.architecture is "${arch}", expected "${expected}"${hint}`, gguf.path);
}

function positive(value: number, key: string, file: string): number {
  if (!(Number.isSafeInteger(value) && value > 0)) throw new ModelFilesError('BAD_METADATA', `${key} is ${value}, expected a positive integer`, file);
  return value;
}

/** Validates a text GGUF (arch `gemma`) and describes it. */
export function describeTextModel(gguf: GGUFFile): TextModelFile {
  const file = gguf.path;
  checkArchitecture(gguf, 'gemma');
  const int = (key: string) => positive(meta(() => getInteger(gguf, `gemma.${key}`), file), `gemma.${key}`, file);
  const optInt = (key: string, fallback: number) =>
    positive(meta(() => getOptionalInteger(gguf, `gemma.${key}`), file) ?? fallback, `gemma.${key}`, file);

  const hiddenSize = int('embedding_length');
  const blockCount = int('block_count');
  const headCount = int('attention.head_count');
  const headCountKv = optInt('attention.head_count_kv', headCount);
  const keyLength = optInt('attention.key_length', hiddenSize / headCount);
  const valueLength = optInt('attention.value_length', keyLength);
  const feedForwardLength = int('feed_forward_length');
  const contextLength = Math.min(int('context_length'), MAX_CONTEXT_LENGTH);
  const rmsNormEps = meta(() => getNumber(gguf, 'gemma.attention.layer_norm_rms_epsilon'), file);
  const ropeTheta = meta(() => getOptionalNumber(gguf, 'gemma.rope.freq_base'), file) ?? 10000;
  if (!(rmsNormEps > 0) || !(ropeTheta > 0)) throw new ModelFilesError('BAD_METADATA', 'rms epsilon and rope base must be positive', file);
  if (headCount % headCountKv !== 0) {
    throw new ModelFilesError('BAD_METADATA', `head_count ${headCount} is not a multiple of head_count_kv ${headCountKv}`, file);
  }
  // RoPE rotates pairs of a head's dimensions, and the kernels give keys and values one head size.
  if (keyLength % 2 !== 0) throw new ModelFilesError('BAD_METADATA', `gemma.attention.key_length is ${keyLength}; it must be even (RoPE rotates pairs)`, file);
  if (valueLength !== keyLength) {
    throw new ModelFilesError('BAD_METADATA', `gemma.attention.value_length ${valueLength} differs from key_length ${keyLength}, which this package does not support`, file);
  }

  const t = new Tensors(gguf);
  const tokenEmbd = t.get('token_embd.weight');
  if (tokenEmbd.dims.length !== 2 || tokenEmbd.dims[0] !== hiddenSize) {
    throw new ModelFilesError('BAD_SHAPE', `tensor token_embd.weight has dims ${dimsText(tokenEmbd.dims)}, expected [${hiddenSize}, vocab] (embedding_length)`, file);
  }
  const vocabSize = tokenEmbd.dims[1]!;
  const tokens = meta(() => getOptionalArray(gguf, 'tokenizer.ggml.tokens', 'string'), file);
  if (tokens) checkVocabulary(gguf, tokens, vocabSize);
  const sizes = gemmaDims({
    hidden: hiddenSize, ffn: feedForwardLength, vocab: vocabSize, heads: headCount, kvHeads: headCountKv, keyLength, valueLength,
  });
  const check = (row: TensorRow<keyof typeof sizes>, name: string) => t.row(GEMMA, row, name, sizes);
  const blocks = Array.from({ length: blockCount }, (_, i) => collectFields(GEMMA.block, (row) => check(row, blockPrefix(GEMMA, i) + row.gguf)));
  if (gguf.tensorsByName.has(`${blockPrefix(GEMMA, blockCount)}attn_q.weight`)) {
    throw new ModelFilesError('BAD_METADATA', `block_count is ${blockCount} but the file has a block ${blockCount}`, file);
  }
  const globals = collectFields([...GEMMA.first, ...GEMMA.last], (row) => check(row, row.gguf));
  // A separate output head, which PaliGemma does not have (it is tied to token_embd).
  const output = gguf.tensorsByName.has('output.weight') ? t.shaped('output.weight', [hiddenSize, vocabSize], 'embedding_length, vocab') : undefined;
  return {
    path: file, gguf, hiddenSize, blockCount, headCount, headCountKv, keyLength, valueLength, feedForwardLength,
    contextLength, rmsNormEps, ropeTheta, vocabSize,
    tensors: { ...globals, output, blocks },
  };
}

/**
 * The tokenizer must fit the model: one piece per embedding row (more pieces would have no row; fewer
 * would let the model emit ids no piece decodes, as llama.cpp also refuses), and a `<bos>` to start
 * every prompt with (`tokenizer.ggml.bos_token_id`, else the `<bos>` piece).
 */
function checkVocabulary(gguf: GGUFFile, tokens: readonly string[], vocabSize: number): void {
  const file = gguf.path;
  if (tokens.length > vocabSize) {
    throw new ModelFilesError('BAD_SHAPE', `the tokenizer has ${tokens.length} tokens but token_embd.weight only ${vocabSize} rows`, file);
  }
  if (tokens.length < vocabSize) {
    throw new ModelFilesError(
      'BAD_SHAPE',
      `the tokenizer has ${tokens.length} tokens but token_embd.weight has ${vocabSize} rows: the model could emit ids ${tokens.length}..${vocabSize - 1}, which no token decodes`,
      file,
    );
  }
  // The tokenizer takes -1 for "none" (and refuses ids past the vocabulary itself); a prompt needs one.
  const key = 'tokenizer.ggml.bos_token_id';
  const declared = meta(() => getOptionalInteger(gguf, key), file);
  if ((declared ?? tokens.indexOf('<bos>')) < 0) {
    const found = declared === undefined ? `there is no ${key} and no <bos> token` : `${key} is ${declared}`;
    throw new ModelFilesError('BAD_METADATA', `${found}: every PaliGemma prompt starts with <bos>, so it must be a token id in 0..${tokens.length - 1}`, file);
  }
}

/**
 * Which of a block's two FFN tensors is fc1 (ne = [hidden, ffn]) and which fc2 (ne = [ffn, hidden]),
 * decided by shape. Returns whether the names are swapped, or undefined when the shapes cannot tell
 * (ffn = hidden) or fit neither reading.
 */
function ffnSwapped(up: GGUFTensorInfo, down: GGUFTensorInfo, hidden: number): boolean | undefined {
  const [u0, u1] = up.dims;
  const [d0, d1] = down.dims;
  if (up.dims.length !== 2 || down.dims.length !== 2 || u0 === u1) return undefined;
  if (u0 === hidden && d1 === hidden && u1 === d0) return false;
  if (d0 === hidden && u1 === hidden && d1 === u0) return true;
  return undefined;
}

/** The name a projector file of this variant gives the tensor with canonical name `name`. */
export function nameInFile(name: string, variant: ProjectorVariant): string {
  if (name.startsWith('mm.0.')) return variant.projectorName + name.slice('mm.0'.length);
  if (!variant.ffnNamesSwapped) return name;
  return name.replace(/\.ffn_(up|down)\./, (_, which: string) => (which === 'up' ? '.ffn_down.' : '.ffn_up.'));
}

/** Validates a projector GGUF (arch `clip`, projector_type `paligemma`) and describes it. */
export function describeProjector(gguf: GGUFFile): ProjectorFile {
  const file = gguf.path;
  checkArchitecture(gguf, 'clip');
  const projectorType = meta(() => getOptionalString(gguf, 'clip.projector_type'), file);
  if (projectorType !== 'paligemma') {
    throw new ModelFilesError('BAD_METADATA', `clip.projector_type is ${projectorType === undefined ? 'missing' : `"${projectorType}"`}, expected "paligemma"`, file);
  }
  if (meta(() => getOptionalBool(gguf, 'clip.has_vision_encoder'), file) === false) {
    throw new ModelFilesError('BAD_METADATA', 'clip.has_vision_encoder is false: the file has no vision tower', file);
  }
  const int = (key: string) => positive(meta(() => getInteger(gguf, `clip.vision.${key}`), file), `clip.vision.${key}`, file);
  const imageSize = int('image_size');
  const patchSize = int('patch_size');
  const hiddenSize = int('embedding_length');
  const blockCount = int('block_count');
  const headCount = int('attention.head_count');
  const layerNormEps = meta(() => getNumber(gguf, 'clip.vision.attention.layer_norm_epsilon'), file);
  if (!(layerNormEps > 0)) throw new ModelFilesError('BAD_METADATA', `clip.vision.attention.layer_norm_epsilon is ${layerNormEps}`, file);
  if (imageSize % patchSize !== 0) {
    throw new ModelFilesError('BAD_METADATA', `image_size ${imageSize} is not a multiple of patch_size ${patchSize}`, file);
  }
  if (hiddenSize % headCount !== 0) {
    throw new ModelFilesError('BAD_METADATA', `embedding_length ${hiddenSize} is not a multiple of head_count ${headCount}`, file);
  }
  const channelArray = (key: string): number[] => {
    const v = meta(() => getOptionalArray(gguf, `clip.vision.${key}`, 'f32'), file);
    if (v === undefined) return [0.5, 0.5, 0.5];
    if (v.length !== 3 || !v.every(Number.isFinite)) throw new ModelFilesError('BAD_METADATA', `clip.vision.${key} should be 3 finite numbers`, file);
    return [...v];
  };
  const imageMean = channelArray('image_mean');
  const imageStd = channelArray('image_std');
  if (!imageStd.every((s) => s > 0)) throw new ModelFilesError('BAD_METADATA', 'clip.vision.image_std must be positive', file);

  const t = new Tensors(gguf);
  const h = hiddenSize;
  const patchCount = (imageSize / patchSize) ** 2;
  const channels = t.get('v.patch_embd.weight').dims[2] ?? 0;
  if (channels !== 3) throw new ModelFilesError('BAD_SHAPE', `v.patch_embd.weight has ${channels} input channels, expected 3 (RGB)`, file);

  // FFN orientation: decided on block 0 by shape, then required of every block.
  const notes: string[] = [];
  const ffMeta = meta(() => getOptionalInteger(gguf, 'clip.vision.feed_forward_length'), file);
  const up0 = t.get('v.blk.0.ffn_up.weight');
  const down0 = t.get('v.blk.0.ffn_down.weight');
  const swapped = ffnSwapped(up0, down0, h);
  if (swapped === undefined && !(up0.dims[0] === h && up0.dims[1] === h)) {
    throw new ModelFilesError('BAD_SHAPE', `v.blk.0.ffn_up.weight ${dimsText(up0.dims)} and ffn_down.weight ${dimsText(down0.dims)} are not an FFN pair for embedding_length ${h}`, file);
  }
  const ffnNamesSwapped = swapped === true;
  const ff = ffnNamesSwapped ? down0.dims[1]! : up0.dims[1]!;
  if (ffMeta !== undefined && ffMeta !== ff) {
    throw new ModelFilesError('BAD_SHAPE', `clip.vision.feed_forward_length is ${ffMeta} but the FFN tensors have width ${ff}`, file);
  }
  if (ffnNamesSwapped) notes.push('FFN tensors named the other way round (ffn_down is fc1, ffn_up is fc2); identified by shape');

  const names = (['mm.0', 'mm.input_projection'] as const).filter((n) => gguf.tensorsByName.has(`${n}.weight`));
  if (names.length !== 1) {
    throw new ModelFilesError(names.length === 0 ? 'MISSING_TENSOR' : 'BAD_SHAPE', `expected one projector weight, mm.0.weight or mm.input_projection.weight; found ${names.length}`, file);
  }
  const projectorName = names[0]!;
  if (projectorName !== 'mm.0') notes.push(`projector named ${projectorName} instead of mm.0`);
  const projWeight = t.get(`${projectorName}.weight`);
  if (projWeight.dims.length !== 2 || projWeight.dims[0] !== h) {
    throw new ModelFilesError('BAD_SHAPE', `tensor ${projectorName}.weight has dims ${dimsText(projWeight.dims)}, expected [${h}, text hidden] (embedding_length first)`, file);
  }
  const projectionDim = projWeight.dims[1]!;
  const projMeta = meta(() => getOptionalInteger(gguf, 'clip.vision.projection_dim'), file);
  if (projMeta !== undefined && projMeta !== projectionDim) {
    throw new ModelFilesError('BAD_SHAPE', `clip.vision.projection_dim is ${projMeta} but ${projectorName}.weight outputs ${projectionDim}`, file);
  }

  // Every tensor of the table, under the name this file gives it.
  const variant: ProjectorVariant = { projectorName, ffnNamesSwapped };
  const sizes: Record<SiglipDim, number> = { hidden: h, ffn: ff, patch: patchSize, channels, patches: patchCount, projection: projectionDim };
  const check = (row: TensorRow<SiglipDim>, canonical: string) => t.row(SIGLIP, row, nameInFile(canonical, variant), sizes);
  const blocks = Array.from({ length: blockCount }, (_, i) => collectFields(SIGLIP.block, (row) => check(row, blockPrefix(SIGLIP, i) + row.gguf)));
  if (gguf.tensorsByName.has(`${blockPrefix(SIGLIP, blockCount)}attn_q.weight`)) {
    throw new ModelFilesError('BAD_METADATA', `clip.vision.block_count is ${blockCount} but the file has a block ${blockCount}`, file);
  }
  const globals = collectFields([...SIGLIP.first, ...SIGLIP.last], (row) => check(row, row.gguf));
  return {
    path: file, gguf, imageSize, patchSize, patchCount, channels, hiddenSize, feedForwardLength: ff, blockCount, headCount,
    layerNormEps, projectionDim, imageMean, imageStd,
    variant,
    notes,
    tensors: { ...globals, blocks },
  };
}

/** Checks that a projector feeds this text model: its output width must be the text hidden size. */
export function checkModelPair(text: TextModelFile, projector: ProjectorFile): void {
  if (projector.projectionDim !== text.hiddenSize) {
    throw new ModelFilesError(
      'MISMATCH',
      `the projector ${projector.path} outputs ${projector.projectionDim}-dim embeddings but the text model ${text.path} has hidden size ${text.hiddenSize}; these files do not belong together`,
    );
  }
}

/** Where the model comes from: GGUF paths, or an Ollama name (optionally with a projector path). */
export interface ModelFilesOptions {
  /** Path of the text GGUF. */
  model?: string;
  /** Path of the projector GGUF (also overrides an Ollama model's projector layer). */
  projector?: string;
  /** Ollama name `[namespace/]model[:tag]`, resolved in the local store. */
  ollama?: string;
  /** Ollama store directory (default `$OLLAMA_MODELS` or `~/.ollama/models`). */
  ollamaModelsDir?: string;
  /** Fail when no projector is available (default true; false allows text-only use). */
  requireProjector?: boolean;
}

/** A validated model: the text file and, unless text-only, its projector. */
export interface ModelFiles {
  text: TextModelFile;
  projector?: ProjectorFile;
  /** Set when the files came from the Ollama store. */
  ollama?: OllamaModelFiles;
}

/**
 * Finds, reads (headers only) and validates the model's files. Throws ModelFilesError, GGUFError (a
 * corrupt file) or OllamaError (a store problem), each saying what is wrong.
 */
export async function locateModelFiles(options: ModelFilesOptions): Promise<ModelFiles> {
  if ((options.model === undefined) === (options.ollama === undefined)) {
    throw new ModelFilesError('BAD_OPTIONS', 'give exactly one of `model` (a GGUF path) and `ollama` (an Ollama model name)');
  }
  const requireProjector = options.requireProjector !== false;
  let ollama: OllamaModelFiles | undefined;
  let textPath = options.model;
  let projectorPath = options.projector;
  if (options.ollama !== undefined) {
    ollama = await resolveOllamaModel(options.ollama, {
      modelsDir: options.ollamaModelsDir,
      requireProjector: requireProjector && projectorPath === undefined,
    });
    textPath = ollama.modelPath;
    projectorPath ??= ollama.projectorPath;
  }
  if (projectorPath === undefined && requireProjector) {
    throw new ModelFilesError(
      'NO_PROJECTOR',
      'no projector file given: PaliGemma needs the mmproj GGUF to see images. Make one from the Hugging Face checkpoint with `paligemma convert <hf-dir> --out <dir>`',
    );
  }
  const text = describeTextModel(await readGGUF(textPath!));
  if (projectorPath === undefined) return { text, ollama };
  const projector = describeProjector(await readGGUF(projectorPath));
  checkModelPair(text, projector);
  return { text, projector, ollama };
}
