/**
 * Hugging Face PaliGemma checkpoint → two GGUF files: the text model (`<name>-<type>.gguf`, laid out
 * exactly like the published paligemma-3b-mix-224 GGUF) and the projector (`mmproj-<name>-<type>.gguf`,
 * SigLIP tower + linear projector, as docs/FORMAT.md defines it). Tensors are streamed chunk by chunk
 * from safetensors to GGUF, so memory stays near one chunk whatever the checkpoint size.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeGGUF } from '../gguf/writer.js';
import type { GGMLTypeName, GGUFTensorInput, GGUFValue } from '../gguf/types.js';
import { GGML_QUANTIZATION_VERSION, LLAMA_FILE_TYPE } from '../gguf/ggml-types.js';
import { isQuantizedName, withFallback } from '../quant/plan.js';
import { MAX_JSON_BYTES, readConfig } from './config.js';
import type { PaliGemmaConfig } from './config.js';
import { readCheckpointVocab } from './checkpoint-vocab.js';
import type { CheckpointVocab } from './checkpoint-vocab.js';
import { convertElements } from './dtype.js';
import type { FloatType } from './dtype.js';
import { ConvertError, convertFileError } from './errors.js';
import { readRegularFile } from '../files.js';
import { openCheckpoint, readTensorChunks } from './safetensors.js';
import type { SafetensorsTensor } from './safetensors.js';
import { checkCheckpoint, projectorTensorPlan, textTensorPlan } from './tensors.js';
import type { TensorMapping } from './tensors.js';
import { TokenType } from '../tokenizer/vocab-types.js';

/**
 * Output type of the weight matrices (norms, biases and the position embedding stay F32). `q8_0` gives
 * Q8_0 where rows are a multiple of 32 and F16 elsewhere, as `paligemma quantize --type q8_0` does.
 */
export type OutType = 'f32' | 'f16' | 'bf16' | 'q8_0';

/** Every accepted `outType`. */
export const OUT_TYPES: readonly OutType[] = ['f32', 'f16', 'bf16', 'q8_0'];

/** Progress of a conversion, in source bytes. */
export interface ConvertProgress {
  bytesDone: number;
  bytesTotal: number;
  /** The GGUF tensor being written. */
  tensor: string;
}

/** Options of `convertCheckpoint`. */
export interface ConvertOptions {
  /** Directory for the two GGUF files (created if missing). */
  outDir: string;
  /** Default `f16`, the published file's type. */
  outType?: OutType;
  /** Model name for `general.name` and the file names; default: the checkpoint directory's name. */
  name?: string;
  onProgress?: (progress: ConvertProgress) => void;
}

/** What `convertCheckpoint` wrote. */
export interface ConvertResult {
  textPath: string;
  projectorPath: string;
  name: string;
  outType: OutType;
  /** Where the vocabulary came from. */
  vocabSource: CheckpointVocab['source'];
}

/** The published text GGUF's context length (HF's max_position_embeddings is Gemma's 8192). */
export const PALIGEMMA_CONTEXT_LENGTH = 2048;

/** llama.cpp's `general.file_type` of each output type. */
const FILE_TYPE: Record<OutType, number> = {
  f32: LLAMA_FILE_TYPE.ALL_F32, f16: LLAMA_FILE_TYPE.MOSTLY_F16, bf16: LLAMA_FILE_TYPE.MOSTLY_BF16, q8_0: LLAMA_FILE_TYPE.MOSTLY_Q8_0,
};
const FLOAT_TYPE: Record<Exclude<OutType, 'q8_0'>, FloatType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

const u32 = (value: number): GGUFValue => ({ type: 'u32', value });
const f32 = (value: number): GGUFValue => ({ type: 'f32', value });
const str = (value: string): GGUFValue => ({ type: 'string', value });
const bool = (value: boolean): GGUFValue => ({ type: 'bool', value });

/** The text GGUF's metadata, in the published file's key set. */
export function textMetadata(cfg: PaliGemmaConfig, name: string, outType: OutType, vocab: CheckpointVocab, tok: TokenizerFlags): Map<string, GGUFValue> {
  const t = cfg.text;
  const m = new Map<string, GGUFValue>([
    ['general.architecture', str('gemma')],
    ['general.name', str(name)],
    ['general.file_type', u32(FILE_TYPE[outType])],
    ['gemma.context_length', u32(PALIGEMMA_CONTEXT_LENGTH)],
    ['gemma.embedding_length', u32(t.hiddenSize)],
    ['gemma.block_count', u32(t.numLayers)],
    ['gemma.feed_forward_length', u32(t.intermediateSize)],
    ['gemma.attention.head_count', u32(t.numHeads)],
    ['gemma.attention.head_count_kv', u32(t.numKvHeads)],
    ['gemma.attention.key_length', u32(t.headDim)],
    ['gemma.attention.value_length', u32(t.headDim)],
    ['gemma.attention.layer_norm_rms_epsilon', f32(t.rmsNormEps)],
  ]);
  // The published file has no rope key (llama.cpp's default base is 10000); write one only when it differs.
  if (t.ropeTheta !== 10000) m.set('gemma.rope.freq_base', f32(t.ropeTheta));
  m.set('tokenizer.ggml.model', str('llama'));
  m.set('tokenizer.ggml.pre', str('default'));
  m.set('tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: vocab.tokens });
  m.set('tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: vocab.scores });
  m.set('tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: vocab.types });
  m.set('tokenizer.ggml.bos_token_id', u32(cfg.bosTokenId));
  m.set('tokenizer.ggml.eos_token_id', u32(cfg.eosTokenId));
  const unk = vocab.types.indexOf(TokenType.UNKNOWN);
  if (unk >= 0) m.set('tokenizer.ggml.unknown_token_id', u32(unk));
  m.set('tokenizer.ggml.padding_token_id', u32(cfg.padTokenId));
  m.set('tokenizer.ggml.add_bos_token', bool(tok.addBos));
  m.set('tokenizer.ggml.add_eos_token', bool(tok.addEos));
  // PaliGemma prompts are tokenized without a dummy space prefix; say so explicitly (llama.cpp defaults to one).
  m.set('tokenizer.ggml.add_space_prefix', bool(false));
  if (outType === 'q8_0') m.set('general.quantization_version', u32(GGML_QUANTIZATION_VERSION));
  return m;
}

/** The projector GGUF's metadata (docs/FORMAT.md). */
export function projectorMetadata(cfg: PaliGemmaConfig, name: string, outType: OutType, norm: ImageNormalization): Map<string, GGUFValue> {
  const v = cfg.vision;
  const m = new Map<string, GGUFValue>([
    ['general.architecture', str('clip')],
    ['general.type', str('mmproj')],
    ['general.name', str(name)],
    ['general.file_type', u32(FILE_TYPE[outType])],
    ['clip.projector_type', str('paligemma')],
    ['clip.has_vision_encoder', bool(true)],
    ['clip.has_text_encoder', bool(false)],
    ['clip.use_gelu', bool(true)],
    ['clip.vision.image_size', u32(v.imageSize)],
    ['clip.vision.patch_size', u32(v.patchSize)],
    ['clip.vision.embedding_length', u32(v.hiddenSize)],
    ['clip.vision.feed_forward_length', u32(v.intermediateSize)],
    ['clip.vision.block_count', u32(v.numLayers)],
    ['clip.vision.attention.head_count', u32(v.numHeads)],
    ['clip.vision.attention.layer_norm_epsilon', f32(v.layerNormEps)],
    ['clip.vision.projection_dim', u32(cfg.projectionDim)],
    ['clip.vision.image_mean', { type: 'array', itemType: 'f32', value: Float32Array.from(norm.mean) }],
    ['clip.vision.image_std', { type: 'array', itemType: 'f32', value: Float32Array.from(norm.std) }],
  ]);
  if (outType === 'q8_0') m.set('general.quantization_version', u32(GGML_QUANTIZATION_VERSION));
  return m;
}

/** `add_bos_token` / `add_eos_token` of tokenizer_config.json (defaults: Gemma's true / false). */
export interface TokenizerFlags {
  addBos: boolean;
  addEos: boolean;
}

/** Per-channel pixel normalization of preprocessor_config.json (SigLIP's default 0.5 / 0.5). */
export interface ImageNormalization {
  mean: number[];
  std: number[];
}

async function readOptionalJson(file: string): Promise<Record<string, unknown> | undefined> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  const bytes = await readRegularFile(file, 'a JSON file', convertFileError('BAD_CONFIG'), MAX_JSON_BYTES);
  try {
    const json: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : {};
  } catch (err) {
    throw new ConvertError('BAD_CONFIG', `not valid JSON (${(err as Error).message})`, file);
  }
}

async function readTokenizerFlags(dir: string): Promise<TokenizerFlags> {
  const json = (await readOptionalJson(path.join(dir, 'tokenizer_config.json'))) ?? {};
  return {
    addBos: typeof json.add_bos_token === 'boolean' ? json.add_bos_token : true,
    addEos: typeof json.add_eos_token === 'boolean' ? json.add_eos_token : false,
  };
}

async function readImageNormalization(dir: string, channels: number): Promise<ImageNormalization> {
  const file = path.join(dir, 'preprocessor_config.json');
  const json = (await readOptionalJson(file)) ?? {};
  const channelValues = (key: 'image_mean' | 'image_std'): number[] => {
    const v = json[key];
    if (v === undefined) return new Array<number>(channels).fill(0.5);
    const ok = Array.isArray(v) && v.length === channels && v.every((x) => typeof x === 'number' && Number.isFinite(x)) &&
      (key === 'image_mean' || v.every((x) => (x as number) > 0));
    if (!ok) throw new ConvertError('BAD_CONFIG', `${key} is ${JSON.stringify(v)}; expected ${channels} numbers`, file);
    return v as number[];
  };
  return { mean: channelValues('image_mean'), std: channelValues('image_std') };
}

/** The type a mapped tensor is stored as. */
function storageType(m: TensorMapping, outType: OutType): GGMLTypeName {
  if (m.storage === 'F32') return 'F32';
  return outType === 'q8_0' ? withFallback('Q8_0', m.shape.at(-1)!) : FLOAT_TYPE[outType];
}

/**
 * Writes one GGUF file atomically: to `<file>.partial`, renamed on success, removed on failure, so an
 * interrupted conversion never leaves a file that looks complete.
 */
export async function writeAtomically(file: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${file}.partial`;
  try {
    await write(tmp);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Converts the PaliGemma checkpoint in `hfDir` (config.json, safetensors — single or sharded —, and
 * tokenizer.model or tokenizer.json) into the text and projector GGUF files in `outDir`. Everything is
 * validated (config against tensor shapes, the vocabulary against the embedding) before anything is
 * written. Throws ConvertError / SafetensorsError naming the problem.
 */
export async function convertCheckpoint(hfDir: string, options: ConvertOptions): Promise<ConvertResult> {
  const outType = options.outType ?? 'f16';
  if (!OUT_TYPES.includes(outType)) {
    throw new ConvertError('BAD_OPTION', `outType must be one of ${OUT_TYPES.join(', ')}, not ${JSON.stringify(outType)}`);
  }
  const dir = path.resolve(hfDir);
  const name = options.name ?? path.basename(dir);
  if (!name || /[/\\]/.test(name)) throw new ConvertError('BAD_OPTION', `model name ${JSON.stringify(name)} cannot be used in a file name`);

  const cfg = await readConfig(path.join(dir, 'config.json'));
  const checkpoint = await openCheckpoint(dir);
  const tensors = checkCheckpoint(cfg, checkpoint);
  const vocab = await readCheckpointVocab(dir, tensors.get('language_model.model.embed_tokens.weight')!.shape[0]!);
  for (const [key, id] of [['bos_token_id', cfg.bosTokenId], ['eos_token_id', cfg.eosTokenId], ['pad_token_id', cfg.padTokenId]] as const) {
    if (id >= vocab.tokens.length) throw new ConvertError('BAD_CONFIG', `config.json: ${key} ${id} is outside the ${vocab.tokens.length}-token vocabulary`, dir);
  }
  const tokFlags = await readTokenizerFlags(dir);
  const norm = await readImageNormalization(dir, cfg.vision.numChannels);

  const textPlan = textTensorPlan(cfg);
  const projectorPlan = projectorTensorPlan(cfg);
  const bytesTotal = [...textPlan, ...projectorPlan].reduce((sum, m) => sum + tensors.get(m.hf)!.size, 0);
  let bytesDone = 0;

  // Streams one tensor: read a chunk, convert it, hand it to the writer, report progress.
  async function* stream(m: TensorMapping, src: SafetensorsTensor): AsyncGenerator<Uint8Array> {
    const to = storageType(m, outType);
    async function* source(): AsyncGenerator<Uint8Array> {
      for await (const chunk of readTensorChunks(src)) {
        bytesDone += chunk.byteLength;
        options.onProgress?.({ bytesDone, bytesTotal, tensor: m.gguf });
        yield chunk;
      }
    }
    if (isQuantizedName(to)) {
      const { quantizeRowStream } = await import('../quant/rows.js'); // the native addon, only when quantizing
      yield* quantizeRowStream(source(), { name: m.gguf, from: src.dtype, to, rowLength: m.shape.at(-1)!, path: src.path });
    } else {
      for await (const chunk of source()) yield convertElements(chunk, src.dtype, to as FloatType, m.addOne);
    }
  }
  const ggufTensors = (plan: TensorMapping[]): GGUFTensorInput[] =>
    plan.map((m) => {
      const src = tensors.get(m.hf)!;
      return { name: m.gguf, type: storageType(m, outType), dims: [...src.shape].reverse(), data: () => stream(m, src) };
    });

  const outDir = path.resolve(options.outDir);
  await mkdir(outDir, { recursive: true }).catch((err: Error) => {
    throw new ConvertError('IO', `cannot create the output directory (${err.message})`, outDir);
  });
  const textPath = path.join(outDir, `${name}-${outType}.gguf`);
  const projectorPath = path.join(outDir, `mmproj-${name}-${outType}.gguf`);
  await writeAtomically(textPath, (tmp) =>
    writeGGUF(tmp, { metadata: textMetadata(cfg, name, outType, vocab, tokFlags), tensors: ggufTensors(textPlan) }));
  await writeAtomically(projectorPath, (tmp) =>
    writeGGUF(tmp, { metadata: projectorMetadata(cfg, name, outType, norm), tensors: ggufTensors(projectorPlan) }));
  return { textPath, projectorPath, name, outType, vocabSource: vocab.source };
}
