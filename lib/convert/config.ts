/**
 * Hugging Face PaliGemma `config.json` → typed hyperparameters, with transformers' defaults for absent
 * keys. The real paligemma-3b-mix-224 config omits several keys (the text model's head_dim,
 * rms_norm_eps, rope_theta; the vision model's image_size, layer_norm_eps), so the defaults matter;
 * `checkCheckpoint` (tensors.ts) then verifies everything against the tensor shapes.
 */
import { readRegularFile, type FileErrorFactory } from '../files.js';
import { ConvertError, convertFileError } from './errors.js';

/** The Gemma language model's hyperparameters. */
export interface GemmaTextConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
}

/** The SigLIP vision tower's hyperparameters. */
export interface SiglipVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numChannels: number;
  imageSize: number;
  patchSize: number;
  layerNormEps: number;
}

/** A whole PaliGemma checkpoint's configuration. */
export interface PaliGemmaConfig {
  text: GemmaTextConfig;
  vision: SiglipVisionConfig;
  /** Output width of the projector; must equal the text hidden size. */
  projectionDim: number;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
  imageTokenIndex: number;
}

/** transformers' GemmaConfig defaults, used for keys absent from a present `text_config`. */
const GEMMA_DEFAULTS = {
  vocab_size: 256000, hidden_size: 3072, intermediate_size: 24576, num_hidden_layers: 28,
  num_attention_heads: 16, num_key_value_heads: 16, head_dim: 256, rms_norm_eps: 1e-6, rope_theta: 10000,
  max_position_embeddings: 8192,
};

/** transformers' SiglipVisionConfig defaults, used for keys absent from a present `vision_config`. */
const SIGLIP_DEFAULTS = {
  hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, num_channels: 3,
  image_size: 224, patch_size: 16, layer_norm_eps: 1e-6,
};

/**
 * What PaliGemmaConfig builds when a sub-config is absent altogether (Gemma-2B and SigLIP So400m/14;
 * transformers' intermediate_size 4096 there is its own quirk, so a checkpoint relying on it is rejected
 * by the shape check rather than silently misread).
 */
const PALIGEMMA_TEXT_DEFAULTS = {
  hidden_size: 2048, num_hidden_layers: 18, intermediate_size: 16384, num_attention_heads: 8, num_key_value_heads: 1,
};
const PALIGEMMA_VISION_DEFAULTS = {
  intermediate_size: 4096, hidden_size: 1152, patch_size: 14, image_size: 224, num_hidden_layers: 27, num_attention_heads: 16,
};

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads `obj[key]` as a number of the right kind, or the default when absent. */
function num(obj: Json, key: string, fallback: number, where: string, kind: 'count' | 'id' | 'positive', file?: string): number {
  const v = obj[key] ?? fallback;
  const ok = typeof v === 'number' && Number.isFinite(v) &&
    (kind === 'positive' ? v > 0 : Number.isSafeInteger(v) && (kind === 'id' ? v >= 0 : v > 0));
  if (!ok) {
    const want = kind === 'positive' ? 'a positive number' : kind === 'id' ? 'a non-negative integer' : 'a positive integer';
    throw new ConvertError('BAD_CONFIG', `config.json: ${where}${key} is ${JSON.stringify(v)}; expected ${want}`, file);
  }
  return v as number;
}

/** Parses a PaliGemma `config.json` object; `file` names it in errors. */
export function parseConfig(json: unknown, file?: string): PaliGemmaConfig {
  if (!isObject(json)) throw new ConvertError('BAD_CONFIG', 'config.json is not a JSON object', file);
  if (json.model_type !== undefined && json.model_type !== 'paligemma') {
    throw new ConvertError('UNSUPPORTED', `config.json: model_type is ${JSON.stringify(json.model_type)}; only "paligemma" checkpoints can be converted`, file);
  }
  const subConfig = (key: string, modelType: string, absent: Json): Json => {
    const v = json[key];
    if (v === undefined || v === null) return absent;
    if (!isObject(v)) throw new ConvertError('BAD_CONFIG', `config.json: ${key} is not an object`, file);
    if (v.model_type !== undefined && v.model_type !== modelType) {
      throw new ConvertError('UNSUPPORTED', `config.json: ${key}.model_type is ${JSON.stringify(v.model_type)}; expected "${modelType}"`, file);
    }
    return v;
  };
  const t = subConfig('text_config', 'gemma', { ...PALIGEMMA_TEXT_DEFAULTS, vocab_size: json.vocab_size ?? 257152 });
  const v = subConfig('vision_config', 'siglip_vision_model', PALIGEMMA_VISION_DEFAULTS);
  const T = GEMMA_DEFAULTS;
  const V = SIGLIP_DEFAULTS;

  const text: GemmaTextConfig = {
    hiddenSize: num(t, 'hidden_size', T.hidden_size, 'text_config.', 'count', file),
    intermediateSize: num(t, 'intermediate_size', T.intermediate_size, 'text_config.', 'count', file),
    numLayers: num(t, 'num_hidden_layers', T.num_hidden_layers, 'text_config.', 'count', file),
    numHeads: num(t, 'num_attention_heads', T.num_attention_heads, 'text_config.', 'count', file),
    numKvHeads: num(t, 'num_key_value_heads', T.num_key_value_heads, 'text_config.', 'count', file),
    headDim: num(t, 'head_dim', T.head_dim, 'text_config.', 'count', file),
    vocabSize: num(t, 'vocab_size', T.vocab_size, 'text_config.', 'count', file),
    rmsNormEps: num(t, 'rms_norm_eps', T.rms_norm_eps, 'text_config.', 'positive', file),
    ropeTheta: num(t, 'rope_theta', T.rope_theta, 'text_config.', 'positive', file),
    maxPositionEmbeddings: num(t, 'max_position_embeddings', T.max_position_embeddings, 'text_config.', 'count', file),
  };
  const vision: SiglipVisionConfig = {
    hiddenSize: num(v, 'hidden_size', V.hidden_size, 'vision_config.', 'count', file),
    intermediateSize: num(v, 'intermediate_size', V.intermediate_size, 'vision_config.', 'count', file),
    numLayers: num(v, 'num_hidden_layers', V.num_hidden_layers, 'vision_config.', 'count', file),
    numHeads: num(v, 'num_attention_heads', V.num_attention_heads, 'vision_config.', 'count', file),
    numChannels: num(v, 'num_channels', V.num_channels, 'vision_config.', 'count', file),
    imageSize: num(v, 'image_size', V.image_size, 'vision_config.', 'count', file),
    patchSize: num(v, 'patch_size', V.patch_size, 'vision_config.', 'count', file),
    layerNormEps: num(v, 'layer_norm_eps', V.layer_norm_eps, 'vision_config.', 'positive', file),
  };
  if (text.numHeads % text.numKvHeads !== 0) {
    throw new ConvertError('BAD_CONFIG', `config.json: num_attention_heads ${text.numHeads} is not a multiple of num_key_value_heads ${text.numKvHeads}`, file);
  }
  if (vision.hiddenSize % vision.numHeads !== 0) {
    throw new ConvertError('BAD_CONFIG', `config.json: vision hidden_size ${vision.hiddenSize} is not a multiple of num_attention_heads ${vision.numHeads}`, file);
  }
  if (vision.imageSize % vision.patchSize !== 0) {
    throw new ConvertError('BAD_CONFIG', `config.json: vision image_size ${vision.imageSize} is not a multiple of patch_size ${vision.patchSize}`, file);
  }
  if (isObject(json.text_config) && json.text_config.tie_word_embeddings === false) {
    throw new ConvertError('UNSUPPORTED', 'config.json: untied output embeddings (tie_word_embeddings false) are not supported', file);
  }
  const projectionDim = num(json, 'projection_dim', 2048, '', 'count', file);
  if (projectionDim !== text.hiddenSize) {
    throw new ConvertError('BAD_CONFIG', `config.json: projection_dim ${projectionDim} differs from the text hidden_size ${text.hiddenSize}; the projector must output text embeddings`, file);
  }
  // Special ids: the top-level keys, else the text config's, else Gemma's.
  const id = (key: string, fallback: number) => num(json, key, (t[key] as number | undefined) ?? fallback, '', 'id', file);
  return {
    text,
    vision,
    projectionDim,
    bosTokenId: id('bos_token_id', 2),
    eosTokenId: id('eos_token_id', 1),
    padTokenId: id('pad_token_id', 0),
    imageTokenIndex: num(json, 'image_token_index', 256000, '', 'id', file),
  };
}

/** JSON files of a checkpoint above this size are not what they claim to be (real ones are a few KB). */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

/** Reads and parses `config.json`. */
export async function readConfig(file: string): Promise<PaliGemmaConfig> {
  const fail: FileErrorFactory = (problem, message, path, cause) =>
    problem === 'IO' ? new ConvertError('MISSING_FILE', `cannot read config.json (${message})`, file) : convertFileError('BAD_CONFIG')(problem, message, path, cause);
  const text = (await readRegularFile(file, 'a config.json file', fail, MAX_JSON_BYTES)).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConvertError('BAD_CONFIG', `config.json is not valid JSON (${(err as Error).message})`, file);
  }
  return parseConfig(json, file);
}
