/**
 * The PaliGemma model: loads the two GGUF files, and turns an image and a prompt into text.
 * Data flows one way: image → pixels → vision features → prefill → decode loop → text.
 * Concurrent calls on one model run as sequences of one step scheduler (scheduler.ts), which
 * batches their decode steps; every heavy step runs in native code off the JS thread.
 */
import { performance } from 'node:perf_hooks';

import { preprocess } from '../image/index.js';
import { checkMaxPixels, probeImage } from '../image/decode.js';
import { checkOptions, optionError } from '../options.js';
import { native, checkSimdVariant, type NativeModel } from '../native.js';
import { Tokenizer, TokenizerError } from '../tokenizer/index.js';
import { PaliGemmaError } from '../errors.js';
import { ModelFilesError, locateModelFiles, type ModelFiles, type ModelFilesErrorCode } from './files.js';
import { textSpec, visionSpec } from './native-spec.js';
import { ByteLru } from './cache.js';
import { Generation } from './generation.js';
import { NATIVE_MAX_SEQUENCES, Scheduler, disposedError, type SchedulerLoad, type SequenceJob, type SequenceOutcome } from './scheduler.js';
import { DEFAULT_MAX_TOKENS } from './types.js';
import type {
  ModelImage,
  LoadModelOptions,
  LoadProgress,
  DescribeItem,
  DescribeManyOptions,
  GenerationOptions,
  DescribeOptions,
  GenerationResult,
  GenerateInput,
  EvaluateInput,
  Evaluation,
  TaskOptions,
} from './types.js';

import { checkSampling } from './sampling.js';
import {
  SegmentationDecoder,
  answerPrompt,
  captionPrompt,
  decodeSegmentation,
  detectPrompt,
  missingDecoderError,
  ocrPrompt,
  parseDetections,
  segmentPrompt,
  type CaptionOptions,
  type Detection,
  type ImageSize,
  type SegmentMask,
  type SegmentationResult,
} from '../tasks/index.js';

export type { SchedulerLoad } from './scheduler.js';
export type {
  ModelImage,
  LoadModelOptions,
  LoadProgress,
  DescribeItem,
  DescribeManyOptions,
  Timings,
  GenerationOptions,
  DescribeOptions,
  GenerationResult,
  GenerateInput,
  EvaluateInput,
  Evaluation,
  TaskOptions,
} from './types.js';

/** The `<image>` placeholder id in PaliGemma's vocabulary and `\n`, which ends every prompt. */
const IMAGE_PIECE = '<image>';
const DEFAULT_PROMPT = 'caption en';
const DEFAULT_IMAGE_CACHE_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_SEQUENCES = 16;

/**
 * Loads a PaliGemma model: validates the files (headers only), maps the weights and prepares the
 * native model. Give `model` (+ `projector`) paths or an `ollama` name.
 */
export async function loadModel(options: LoadModelOptions): Promise<PaliGemma> {
  if (typeof options !== 'object' || options === null) throw new PaliGemmaError('BAD_ARGUMENT', 'loadModel(options): options must be an object');
  checkOptions(options, 'loadModel');
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1 && options.threads <= 1024))
    throw new PaliGemmaError('BAD_ARGUMENT', `threads must be an integer in 1..1024, got ${options.threads}`);
  const simd = options.simd === undefined ? undefined : checkSimdVariant(options.simd);
  const cacheBytes = options.imageCacheBytes ?? DEFAULT_IMAGE_CACHE_BYTES;
  if (!(Number.isSafeInteger(cacheBytes) && cacheBytes >= 0))
    throw new PaliGemmaError('BAD_ARGUMENT', `imageCacheBytes must be an integer >= 0, got ${cacheBytes}`);
  checkMaxPixels(options.maxPixels);
  const maxSequences = options.maxSequences ?? DEFAULT_MAX_SEQUENCES;
  if (!(Number.isInteger(maxSequences) && maxSequences >= 1 && maxSequences <= NATIVE_MAX_SEQUENCES))
    throw new PaliGemmaError('BAD_ARGUMENT', `maxSequences must be an integer in 1..${NATIVE_MAX_SEQUENCES}, got ${maxSequences}`);
  const chunk = options.prefillChunkLayers;
  if (chunk !== undefined && !(Number.isInteger(chunk) && chunk >= 1))
    throw new PaliGemmaError('BAD_ARGUMENT', `prefillChunkLayers must be a positive integer, got ${chunk}`);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function')
    throw new PaliGemmaError('BAD_ARGUMENT', 'onProgress must be a function');
  const start = performance.now();
  const files = await locateModelFiles({ ...options, requireProjector: options.requireProjector ?? false });
  const bytes = files.text.gguf.fileSize + (files.projector?.gguf.fileSize ?? 0);
  const progress = (phase: LoadProgress['phase']) => options.onProgress?.({ phase, bytes, elapsedMs: performance.now() - start });
  progress('validated');
  const tokenizer = Tokenizer.fromGGUF(files.text.gguf);
  progress('tokenizer');
  if (tokenizer.vocabSize > files.text.vocabSize) {
    throw new PaliGemmaError(
      'BAD_ARGUMENT',
      `${files.text.path}: the tokenizer has ${tokenizer.vocabSize} pieces but token_embd only ${files.text.vocabSize} rows`,
    );
  }
  const segmentation =
    options.segmentation === undefined ? undefined : await SegmentationDecoder.load(options.segmentation, { simd });
  let handle: NativeModel;
  try {
    handle = new native.NativeModel({
      text: textSpec(files.text),
      vision: files.projector && visionSpec(files.projector),
      threads: options.threads,
      simd,
      lockMemory: options.lockMemory,
    });
  } catch (err) {
    throw nativeLoadError(err);
  }
  progress('mapped');
  const scheduler = new Scheduler(handle, {
    maxSequences,
    prefillChunkLayers: chunk,
    nLayers: files.text.blockCount,
    vocab: files.text.vocabSize,
    imageRows: files.projector?.patchCount ?? 0,
    kvBytesPerPosition: kvBytesPerPosition(files),
    imageCache: new ByteLru(cacheBytes),
  });
  return new PaliGemma(files, tokenizer, handle, scheduler, options.maxPixels, segmentation);
}

/** Bytes of KV cache per position: keys and values (float32) of every layer's KV heads. */
function kvBytesPerPosition(files: ModelFiles): number {
  const t = files.text;
  return t.blockCount * t.headCountKv * (t.keyLength + t.valueLength) * Float32Array.BYTES_PER_ELEMENT;
}

/** Codes of the native model's construction failures (native/model/load.h), all ModelFilesError codes. */
const NATIVE_LOAD_CODES: ReadonlySet<string> = new Set<ModelFilesErrorCode>([
  'MAP_FAILED', 'LOCK_FAILED', 'MISSING_TENSOR', 'BAD_TENSOR', 'BAD_SHAPE', 'BAD_METADATA',
]);

/** A failure of the native model's construction as a ModelFilesError naming the file, when it is one. */
function nativeLoadError(err: unknown): unknown {
  const { code, path, message } = (err ?? {}) as { code?: unknown; path?: unknown; message?: unknown };
  if (typeof code !== 'string' || !NATIVE_LOAD_CODES.has(code) || typeof path !== 'string' || typeof message !== 'string') return err;
  const text = message.startsWith(`${path}: `) ? message.slice(path.length + 2) : message;
  return new ModelFilesError(code as ModelFilesErrorCode, text, path);
}


/** A loaded model. Create with {@link loadModel}; release with {@link PaliGemma.dispose}. */
export class PaliGemma {
  readonly #files: ModelFiles;
  readonly #native: NativeModel;
  readonly #scheduler: Scheduler;
  readonly #maxPixels: number | undefined;
  readonly #imageTokenId: number | undefined;
  readonly #segmentation: SegmentationDecoder | undefined;
  /** Calls not yet settled; dispose() waits for them. */
  readonly #calls = new Set<Promise<unknown>>();
  #disposed = false;
  /** Settles when dispose() has released the native model. */
  #released: Promise<void> | undefined;

  /** The tokenizer of the text model. */
  readonly tokenizer: Tokenizer;

  /** @internal use {@link loadModel}. */
  constructor(
    files: ModelFiles,
    tokenizer: Tokenizer,
    handle: NativeModel,
    scheduler: Scheduler,
    maxPixels: number | undefined,
    segmentation: SegmentationDecoder | undefined,
  ) {
    this.#files = files;
    this.#segmentation = segmentation;
    this.tokenizer = tokenizer;
    this.#native = handle;
    this.#scheduler = scheduler;
    this.#maxPixels = maxPixels;
    this.#imageTokenId = tokenizer.tokenId(IMAGE_PIECE);
  }

  /** The files the model was loaded from (validated headers, sizes, metadata). */
  get files(): ModelFiles {
    return this.#files;
  }

  /** The SIMD kernel set and thread count this model runs with. */
  get runtime(): { simd: string; threads: number } {
    return { simd: this.#native.simd, threads: this.#native.threads };
  }

  /** Image tokens per image (0 without a projector). */
  get imageTokens(): number {
    return this.#files.projector?.patchCount ?? 0;
  }

  /** Maximum sequence length (prompt + generated tokens). */
  get contextLength(): number {
    return this.#files.text.contextLength;
  }

  /** Calls generating now, calls waiting for a sequence, and the KV cache they hold. */
  get sequences(): SchedulerLoad {
    return this.#scheduler.load;
  }

  /** Bytes of KV cache a sequence holds per position (prompt and generated tokens). */
  get kvBytesPerPosition(): number {
    return kvBytesPerPosition(this.#files);
  }

  /** The mask decoder loaded with the model (option `segmentation`), if any. */
  get segmentation(): SegmentationDecoder | undefined {
    return this.#segmentation;
  }

  /**
   * Runs the model on an image with a task prompt and returns the generated text.
   * `image` is an encoded image (JPEG, PNG, WebP, GIF, TIFF, AVIF) or raw pixels. Concurrent
   * calls generate together, sharing each decode step; each gets exactly the tokens it gets alone.
   */
  describe(image: ModelImage, options: DescribeOptions = {}): Promise<GenerationResult> {
    const invalid = optionError(options, 'describe');
    if (invalid) return Promise.reject(invalid);
    return this.#call(async () => {
      const prompt = options.prompt ?? DEFAULT_PROMPT;
      const ids = this.#promptIds(prompt, this.imageTokens);
      const maxTokens = this.#checkGeneration(options, this.imageTokens + ids.length, true);
      const call = await this.#prepare({ ...options, image }, ids, maxTokens, options.signal);
      const [done] = this.#scheduler.submit([call.job]);
      return call.result(await done!);
    });
  }

  /**
   * Describes several images: `concurrency` at a time (default 4, at most 64), the first of them
   * through the vision tower as one batch, all generating together with every other call on the
   * model. Each result is the one describe() gives alone; they come back in the order of `items`.
   * The first failure (or the signal) stops the others and rejects.
   */
  async describeMany(items: DescribeItem[], options: DescribeManyOptions = {}): Promise<GenerationResult[]> {
    checkOptions(options, 'describeMany');
    if (Array.isArray(items)) for (const item of items) checkOptions(item, 'describeMany item');
    return this.#call(async () => {
      if (!Array.isArray(items)) throw new PaliGemmaError('BAD_ARGUMENT', 'describeMany(items): items must be an array');
      const concurrency = options.concurrency ?? 4;
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > NATIVE_MAX_SEQUENCES)
        throw new PaliGemmaError('BAD_ARGUMENT', `concurrency must be an integer in 1..${NATIVE_MAX_SEQUENCES}, got ${concurrency}`);
      // Validate everything before any heavy work.
      const ids = items.map((item) => this.#promptIds(item?.prompt ?? DEFAULT_PROMPT, this.imageTokens));
      const maxTokens = items.map((item, i) => this.#checkGeneration({ ...item, signal: options.signal }, this.imageTokens + ids[i]!.length, true));
      const stop = new AbortController();
      const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
      const results: GenerationResult[] = [];
      const prepare = (i: number) => this.#prepare(items[i]!, ids[i]!, maxTokens[i]!, signal);
      // Later items start one by one as earlier ones finish.
      let next = Math.min(concurrency, items.length);
      const lane = async (first: Promise<void>) => {
        await first;
        while (next < items.length && !signal.aborted) {
          const i = next++;
          const call = await prepare(i);
          results[i] = call.result(await this.#scheduler.submit([call.job])[0]!);
        }
      };
      try {
        const firstWave = await Promise.all(Array.from({ length: next }, (_, i) => prepare(i)));
        const done = this.#scheduler.submit(firstWave.map((c) => c.job));
        await Promise.all(done.map((d, i) => lane(d.then((outcome) => void (results[i] = firstWave[i]!.result(outcome))))));
      } catch (err) {
        stop.abort(err);
        throw err;
      }
      return results;
    });
  }

  /**
   * Like {@link describe}, as an async iterator of text pieces; its return value is the result.
   * Leaving the loop early (break, return, throw) stops the generation.
   */
  async *stream(image: ModelImage, options: DescribeOptions = {}): AsyncGenerator<string, GenerationResult> {
    options = checkOptions(options, 'stream');
    const pieces: string[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    const done = this.describe(image, {
      ...options,
      signal,
      onToken: (piece, id) => {
        options.onToken?.(piece, id);
        pieces.push(piece);
        wake?.();
      },
    }).finally(() => {
      finished = true;
      wake?.();
    });
    done.catch(() => {}); // surfaced below, after the pieces already produced
    try {
      while (true) {
        while (pieces.length > 0) yield pieces.shift()!;
        if (finished) break;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      return await done;
    } finally {
      if (!finished) stop.abort();
    }
  }

  /** A caption: `caption {lang}` (short, default), `describe {lang}` (long) or `cap {lang}` (raw). */
  async caption(image: ModelImage, options: TaskOptions & CaptionOptions = {}): Promise<GenerationResult> {
    options = checkOptions(options, 'caption');
    return this.describe(image, { ...options, prompt: captionPrompt(options) });
  }

  /** The text in the image. */
  async ocr(image: ModelImage, options: TaskOptions = {}): Promise<GenerationResult> {
    options = checkOptions(options, 'ocr');
    return this.describe(image, { ...options, prompt: ocrPrompt() });
  }

  /** An answer to a question about the image, in language `lang` (default `en`). */
  async answer(image: ModelImage, question: string, options: TaskOptions & { lang?: string } = {}): Promise<GenerationResult> {
    options = checkOptions(options, 'answer');
    return this.describe(image, { ...options, prompt: answerPrompt(question, options.lang) });
  }

  /**
   * Finds objects of the given labels: boxes in pixels of the original image. Malformed parts of
   * the model's output are skipped (see parseDetections for the full report).
   */
  async detect(image: ModelImage, labels: string | string[], options: TaskOptions = {}): Promise<Detection[]> {
    options = checkOptions(options, 'detect');
    const prompt = detectPrompt(typeof labels === 'string' ? [labels] : labels);
    const r = await this.describe(image, { ...options, prompt });
    return parseDetections(r.text, r.image!).detections;
  }

  /**
   * Segments objects of `label`: box plus a binary mask of the original image's size. Needs the
   * `segmentation` decoder file at load time.
   */
  async segment(image: ModelImage, label: string, options: TaskOptions = {}): Promise<SegmentMask[]> {
    options = checkOptions(options, 'segment');
    const decoder = this.#segmentation;
    if (!decoder) throw missingDecoderError();
    const prompt = segmentPrompt(label);
    const r = await this.describe(image, { ...options, prompt });
    return (await decodeSegmentation(r.text, r.image!, decoder)).segments;
  }

  /**
   * An image's size as stored (before EXIF orientation), from its header alone, refused as
   * describe() would refuse it (format, `maxPixels`): a cheap check before a call is queued.
   */
  async probeImage(image: ModelImage): Promise<{ width: number; height: number }> {
    if (typeof image === 'object' && image !== null && 'pixelValues' in image) {
      const size = this.#files.projector?.imageSize ?? 0;
      return { width: size, height: size };
    }
    return probeImage(image, { maxPixels: this.#maxPixels });
  }

  /**
   * Masks for the output of a `segment` prompt (`text`, on an image of `size` pixels, e.g. a
   * result's `image`) with the model's mask decoder (option `segmentation`).
   */
  async decodeSegmentation(text: string, size: ImageSize): Promise<SegmentationResult> {
    const decoder = this.#segmentation;
    if (!decoder) throw missingDecoderError();
    return decodeSegmentation(text, size, decoder);
  }

  /** Text-only generation from raw token ids (no image). */
  async generate(input: GenerateInput): Promise<GenerationResult> {
    checkOptions(input, 'generate');
    return this.#call(async () => {
      if (typeof input !== 'object' || input === null || input.tokens === undefined)
        throw new PaliGemmaError('BAD_ARGUMENT', 'generate({ tokens }): tokens must be an array of token ids');
      const length = (input.tokens as { length?: unknown }).length;
      if (!Number.isSafeInteger(length) || (length as number) < 1)
        throw new PaliGemmaError('BAD_ARGUMENT', 'generate({ tokens }): tokens must be an array of token ids and must not be empty');
      // Checked before the ids are copied: an array-like can claim any length.
      if ((length as number) > this.contextLength) throw this.#overflow(length as number, 0);
      const ids = Int32Array.from(input.tokens);
      const vocab = this.#files.text.vocabSize;
      const bad = Array.from(input.tokens).findIndex((id) => !(Number.isInteger(id) && id >= 0 && id < vocab));
      if (bad >= 0)
        throw new PaliGemmaError('BAD_ARGUMENT', `generate({ tokens }): token ${String(input.tokens[bad])} at index ${bad} is not an id in 0..${vocab - 1}`);
      const maxTokens = this.#checkGeneration(input, ids.length, false);
      const generation = new Generation(input, maxTokens, this.tokenizer, vocab);
      const [done] = this.#scheduler.submit([{ ids, capacity: ids.length + maxTokens, next: generation.next, signal: input.signal }]);
      return generation.result((await done!).timings, ids.length, 0);
    });
  }

  /** One prefix pass with every intermediate exposed (for tests against a reference, and tooling). */
  async evaluate(input: EvaluateInput): Promise<Evaluation> {
    checkOptions(input, 'evaluate');
    return this.#call(async () => {
      if (typeof input?.prompt !== 'string') throw new PaliGemmaError('BAD_ARGUMENT', 'evaluate({ prompt }): prompt must be a string');
      const k = input.topK ?? 10;
      if (!Number.isInteger(k) || k < 1 || k > 1000) throw new PaliGemmaError('BAD_ARGUMENT', `topK must be an integer in 1..1000, got ${k}`);
      const withImage = input.image !== undefined || input.pixelValues !== undefined;
      const nImage = withImage ? this.imageTokens : 0;
      const ids = this.#promptIds(input.prompt, nImage);
      const n = nImage + ids.length;
      if (n > this.contextLength) throw this.#overflow(n, 0); // before any heavy work
      const pixels = withImage ? (await this.#pixels(input.pixelValues ? { pixelValues: input.pixelValues } : input.image!)).pixelValues : undefined;
      // Every row's top-k is selected natively, a bounded chunk of logit rows at a time; only the last row comes whole.
      const kept = Math.min(k, this.#files.text.vocabSize);
      const [done] = this.#scheduler.submit([
        { image: pixels && { pixels, cache: false }, ids, topK: kept, capture: true, next: () => undefined },
      ]);
      const { prefill: out, vision } = await done!;
      const topk = Array.from({ length: n }, (_, i) => ({
        ids: out.topIds!.slice(i * kept, (i + 1) * kept),
        logits: out.topLogits!.slice(i * kept, (i + 1) * kept),
      }));
      const inputIds = new Int32Array(n);
      inputIds.fill(this.#imageTokenId ?? -1, 0, nImage);
      inputIds.set(ids, nImage);
      return {
        inputIds,
        visionOutput: vision?.visionOut.slice(),
        imageFeatures: vision?.features,
        decoderInput: out.decoderInput!,
        layerOutputs: out.layerOut!,
        finalHidden: out.finalHidden!,
        lastLogits: out.logits,
        topk,
      };
    });
  }

  /**
   * Releases the native model and unmaps the files. Calls waiting for a sequence reject with a
   * DISPOSED error; generating calls reject with it before their next step (one whose last token
   * is out completes). Safe to call twice: every call resolves once the memory is released.
   */
  dispose(): Promise<void> {
    this.#released ??= (async () => {
      this.#disposed = true;
      this.#scheduler.close(disposedError());
      await Promise.allSettled(this.#calls);
      await this.#scheduler.idle();
      this.#native.dispose();
    })();
    return this.#released;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** Runs `call` unless the model is disposed, and keeps it in #calls until it settles. */
  #call<T>(call: () => Promise<T>): Promise<T> {
    if (this.#disposed) return Promise.reject(disposedError());
    const run = call();
    this.#calls.add(run);
    const forget = () => void this.#calls.delete(run);
    run.then(forget, forget);
    return run;
  }

  /**
   * A describe call ready for the scheduler: its image preprocessed (before it takes a sequence)
   * and its generation; `result` turns the sequence's outcome into the call's result.
   */
  async #prepare(
    options: GenerationOptions & { image: ModelImage },
    ids: Int32Array,
    maxTokens: number,
    signal: AbortSignal | undefined,
  ): Promise<{ job: SequenceJob; result: (outcome: SequenceOutcome) => GenerationResult }> {
    const t0 = performance.now();
    const { pixelValues, width, height } = await this.#pixels(options.image);
    const preprocessMs = performance.now() - t0;
    const generation = new Generation(options, maxTokens, this.tokenizer, this.#files.text.vocabSize);
    const promptTokens = this.imageTokens + ids.length;
    return {
      job: { image: { pixels: pixelValues, cache: true }, ids, capacity: promptTokens + maxTokens, next: generation.next, signal },
      result: (outcome) => ({ ...generation.result(outcome.timings, promptTokens, preprocessMs), image: { width, height } }),
    };
  }

  #overflow(promptTokens: number, maxTokens: number): PaliGemmaError {
    return new PaliGemmaError(
      'CONTEXT_OVERFLOW',
      `the prompt takes ${promptTokens} positions and maxTokens is ${maxTokens}, but the context length is ${this.contextLength}; shorten the prompt or lower maxTokens`,
    );
  }

  /**
   * `<bos>` + prompt + `\n`, tokenized as the reference processor does (one string, no other
   * specials). Tokenizing stops as soon as the prompt cannot fit beside `imageTokens` image rows, so
   * a huge prompt costs no more than one that just fits.
   */
  #promptIds(prompt: string, imageTokens: number): Int32Array {
    if (typeof prompt !== 'string') throw new PaliGemmaError('BAD_ARGUMENT', 'prompt must be a string');
    const room = this.contextLength - imageTokens - 1; // positions left after the image rows and <bos>
    try {
      return Int32Array.from([this.tokenizer.bosId, ...this.tokenizer.encode(prompt + '\n', { addBos: false, maxTokens: room })]);
    } catch (err) {
      if (!(err instanceof TokenizerError && err.code === 'TOO_MANY_TOKENS')) throw err;
      throw new PaliGemmaError(
        'CONTEXT_OVERFLOW',
        `the prompt needs more than the ${room} tokens left beside ${imageTokens} image positions and <bos>, as the context length is ${this.contextLength}; shorten the prompt`,
      );
    }
  }

  #checkGeneration(o: GenerationOptions, promptTokens: number, needsVision: boolean): number {
    if (needsVision && !this.#files.projector)
      throw new PaliGemmaError('NO_VISION', 'this model was loaded without a projector, so it cannot see images; pass `projector` to loadModel');
    const maxTokens = o.maxTokens ?? DEFAULT_MAX_TOKENS;
    if (!Number.isInteger(maxTokens) || maxTokens < 1)
      throw new PaliGemmaError('BAD_ARGUMENT', `maxTokens must be a positive integer, got ${maxTokens}`);
    try {
      checkSampling(o, this.#files.text.vocabSize);
    } catch (err) {
      throw new PaliGemmaError('BAD_ARGUMENT', (err as Error).message);
    }
    if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
      throw new PaliGemmaError('BAD_ARGUMENT', 'signal must be an AbortSignal');
    if (o.onToken !== undefined && typeof o.onToken !== 'function')
      throw new PaliGemmaError('BAD_ARGUMENT', 'onToken must be a function');
    // The last generated token is never fed back, so it needs no position.
    if (promptTokens + maxTokens - 1 > this.contextLength) throw this.#overflow(promptTokens, maxTokens);
    o.signal?.throwIfAborted();
    return maxTokens;
  }

  async #pixels(image: ModelImage): Promise<{ pixelValues: Float32Array; width: number; height: number }> {
    const p = this.#files.projector;
    if (!p) throw new PaliGemmaError('NO_VISION', 'this model was loaded without a projector, so it cannot see images');
    if (typeof image === 'object' && image !== null && 'pixelValues' in image) {
      const want = 3 * p.imageSize * p.imageSize;
      if (!(image.pixelValues instanceof Float32Array) || image.pixelValues.length !== want)
        throw new PaliGemmaError('BAD_ARGUMENT', `pixelValues must be a Float32Array of 3 x ${p.imageSize} x ${p.imageSize} = ${want} values`);
      return { pixelValues: image.pixelValues, width: p.imageSize, height: p.imageSize };
    }
    return preprocess(image, { size: p.imageSize, mean: p.imageMean, std: p.imageStd, maxPixels: this.#maxPixels });
  }
}
