/**
 * The types of the model API's options and results, apart from the code that uses them, so that
 * modules checking or forwarding options (lib/options.ts, the server) need not import the model.
 */
import type { ImageInput } from '../image/index.js';
import type { SimdVariantName } from '../native.js';
import type { ModelFilesOptions } from './files.js';
import type { SamplingOptions } from './sampling.js';

/**
 * An image for the model: an encoded image (Buffer/Uint8Array), raw pixels, or pixel values
 * already preprocessed for this model ([3, S, S] CHW, normalised; S = the projector's image size).
 */
export type ModelImage = ImageInput | { pixelValues: Float32Array };

/** Options of {@link loadModel}: where the files are, and how to run them. */
export interface LoadModelOptions extends ModelFilesOptions {
  /** Worker threads for the native kernels (default: one per physical core). */
  threads?: number;
  /** Force a SIMD kernel set (default: the best the CPU supports, or PALIGEMMA_SIMD). */
  simd?: SimdVariantName;
  /**
   * Pin the weights in RAM (mlock) so the OS does not drop idle pages, which would make the next
   * call re-read them from disk. Needs a large enough RLIMIT_MEMLOCK (`ulimit -l`); fails with a
   * clear error otherwise. Default false.
   */
  lockMemory?: boolean;
  /** Refuse images with more decoded pixels than this (default 100 megapixels). */
  maxPixels?: number;
  /**
   * The segmentation mask decoder for {@link PaliGemma.segment}: big_vision's `vae-oid.npz`, or the
   * GGUF `paligemma convert` makes of it. Without it, segment() fails and says what to get.
   */
  segmentation?: string;
  /**
   * Bytes of vision-tower outputs to keep, keyed by the image's pixels, so several questions about
   * one image run the tower once (default 64 MiB, about 32 images at 224 px; 0 disables).
   */
  imageCacheBytes?: number;
  /**
   * Calls that generate at once (default 16, at most 64): concurrent calls share each decode step,
   * one pass over the weights for all of them; more calls wait in a queue for a free sequence.
   */
  maxSequences?: number;
  /**
   * Layers of a prompt's prefill run between two decode steps of the calls already generating
   * (default: as many as take about one decode step, measured as the model runs; at least 1).
   */
  prefillChunkLayers?: number;
  /** Called as loading advances (for progress display). */
  onProgress?: (progress: LoadProgress) => void;
}

/** A step of {@link loadModel}. */
export interface LoadProgress {
  /** `validated`: headers read and checked; `tokenizer`: vocabulary built; `mapped`: weights mapped. */
  phase: 'validated' | 'tokenizer' | 'mapped';
  /** Bytes of the model files (text + projector). */
  bytes: number;
  /** Since loadModel was called. */
  elapsedMs: number;
}

/** One image and its prompt for {@link PaliGemma.describeMany}. */
export interface DescribeItem extends Omit<DescribeOptions, 'signal'> {
  image: ModelImage;
}

/** Options of {@link PaliGemma.describeMany}. */
export interface DescribeManyOptions {
  /** Images encoded and sequences decoded together, one weight pass per step (default 4, at most 64). */
  concurrency?: number;
  /** Aborts the whole batch. */
  signal?: AbortSignal;
}

/**
 * Milliseconds per phase of a call, and the decode speed. Each phase is wall-clock time of this
 * call; with concurrent calls, the model interleaves their steps, so a phase includes the steps of
 * other calls run in between (the decode steps it shares with them count once for each).
 */
export interface Timings {
  /** Decoding and resizing the image. */
  preprocessMs: number;
  /** Waiting for a free sequence (see `maxSequences`). */
  queueMs: number;
  /** Until the image's vision-tower output was ready (0 on an image cache hit or without an image). */
  visionMs: number;
  /** The prompt's prefill, from the image features to the first token's logits. */
  prefillMs: number;
  /** From the first token to the last. */
  decodeMs: number;
  /** Positions in the prompt (image tokens included). */
  promptTokens: number;
  generatedTokens: number;
  /** Generated tokens per second of decoding (the first token comes from the prefill). */
  tokensPerSecond: number;
  /** The vision tower's output came from the image cache. */
  imageCacheHit: boolean;
}

/** Tokens a generation call stops at unless told otherwise (`maxTokens`). */
export const DEFAULT_MAX_TOKENS = 100;

/** Options of generation calls. Sampling is greedy unless `temperature` > 0. */
export interface GenerationOptions extends SamplingOptions {
  /** Stop after this many generated tokens (default 100). */
  maxTokens?: number;
  /** Aborts the call: it rejects with the signal's reason (an AbortError) within one decode step. */
  signal?: AbortSignal;
  /** Called with each piece of text as soon as it is decoded (UTF-8 safe), and the token id. */
  onToken?: (piece: string, id: number) => void;
}

/** Options of {@link PaliGemma.describe}. */
export interface DescribeOptions extends GenerationOptions {
  /** The task prefix, e.g. `caption en`, `ocr`, `answer en what is this?`, `detect cat` (default `caption en`). */
  prompt?: string;
}

/** What a generation call returns. */
export interface GenerationResult {
  /** The generated text, without the prompt; `<loc…>`/`<seg…>` tokens are kept for task parsing. */
  text: string;
  /** The generated token ids (without the final `<eos>`). */
  tokens: number[];
  /** Why generation stopped. */
  stopReason: 'eos' | 'maxTokens';
  timings: Timings;
  /**
   * Size of the input image after EXIF orientation (for `{ pixelValues }` input: the model's input
   * size). Task parsers map `<loc…>` coordinates onto it. Absent for text-only generation.
   */
  image?: { width: number; height: number };
}

/** Input of {@link PaliGemma.generate}: raw token ids, text-only. */
export interface GenerateInput extends GenerationOptions {
  /** The prompt as token ids (include `<bos>` yourself). Attention is bidirectional over them, as for PaliGemma prompts. */
  tokens: ArrayLike<number>;
}

/** Input of {@link PaliGemma.evaluate}: an image (or ready pixel values) and a prompt. */
export interface EvaluateInput {
  image?: ImageInput;
  /** Normalised CHW pixels [3, S, S], bypassing preprocessing. */
  pixelValues?: Float32Array;
  prompt: string;
  /** How many top logits to report per prefix position (default 10). */
  topK?: number;
}

/** Every intermediate of one prefix pass, for tests and tooling. */
export interface Evaluation {
  /** The full prompt ids: image placeholder ids, `<bos>`, the prompt, `\n`. */
  inputIds: Int32Array;
  /** SigLIP output after the post-LayerNorm, [patches, vision hidden]. */
  visionOutput?: Float32Array;
  /** Projector output before the 1/sqrt(hidden) scaling, [patches, text hidden]. */
  imageFeatures?: Float32Array;
  /** Rows fed to the first decoder layer, [positions, hidden]. */
  decoderInput: Float32Array;
  /** Residual stream after each decoder layer, [layers, positions, hidden]. */
  layerOutputs: Float32Array;
  /** After the final norm, [positions, hidden]. */
  finalHidden: Float32Array;
  /** Logits at the last prefix position. */
  lastLogits: Float32Array;
  /** Top logits at every prefix position, sorted descending. */
  topk: { ids: Int32Array; logits: Float32Array }[];
}

/** Options of the task methods: generation options plus, for captions, language and detail. */
export type TaskOptions = Omit<DescribeOptions, 'prompt'>;
