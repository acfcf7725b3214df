/**
 * The PaliGemma model: loads the two GGUF files, and turns an image and a prompt into text.
 * Data flows one way: image → pixels → vision features → prefill → decode loop → text.
 * Every call on one model runs after the previous one finished (a promise queue), and every
 * heavy step runs in native code off the JS thread.
 */
import { performance } from 'node:perf_hooks';

import { preprocess } from '../image/index.js';
import { checkMaxPixels } from '../image/decode.js';
import { checkOptions, optionError } from '../options.js';
import { native, checkSimdVariant, type NativeModel } from '../native.js';
import { Tokenizer, TokenizerError } from '../tokenizer/index.js';
import { PaliGemmaError } from '../errors.js';
import { ModelFilesError, locateModelFiles, type ModelFiles, type ModelFilesErrorCode } from './files.js';
import { textSpec, visionSpec } from './native-spec.js';
import { ByteLru, pixelKey } from './cache.js';
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

import { checkSampling, createSampler } from './sampling.js';
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
  type SegmentMask,
} from '../tasks/index.js';

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
const DEFAULT_MAX_TOKENS = 100;
const DEFAULT_IMAGE_CACHE_BYTES = 64 * 1024 * 1024;
const MAX_BATCH = 64;

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
  return new PaliGemma(files, tokenizer, handle, options.maxPixels, segmentation, new ByteLru(cacheBytes));
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
  readonly #maxPixels: number | undefined;
  readonly #imageTokenId: number | undefined;
  readonly #segmentation: SegmentationDecoder | undefined;
  /** Vision-tower outputs (projector features) by pixel hash. */
  readonly #imageCache: ByteLru<Float32Array>;
  /** Tail of the call queue: each call starts when the previous one settled. */
  #tail: Promise<unknown> = Promise.resolve();
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
    maxPixels: number | undefined,
    segmentation: SegmentationDecoder | undefined,
    imageCache: ByteLru<Float32Array>,
  ) {
    this.#files = files;
    this.#imageCache = imageCache;
    this.#segmentation = segmentation;
    this.tokenizer = tokenizer;
    this.#native = handle;
    this.#maxPixels = maxPixels;
    this.#imageTokenId = tokenizer.tokenId(IMAGE_PIECE);
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

  /**
   * Runs the model on an image with a task prompt and returns the generated text.
   * `image` is an encoded image (JPEG, PNG, WebP, GIF, TIFF, AVIF) or raw pixels.
   */
  describe(image: ModelImage, options: DescribeOptions = {}): Promise<GenerationResult> {
    const invalid = optionError(options, 'describe');
    if (invalid) return Promise.reject(invalid);
    return this.#enqueue(async () => {
      const prompt = options.prompt ?? DEFAULT_PROMPT;
      const ids = this.#promptIds(prompt, this.imageTokens);
      const maxTokens = this.#checkGeneration(options, this.imageTokens + ids.length, true);
      const [result] = await this.#describeBatch([{ ...options, image, prompt }], [ids], [maxTokens], options.signal);
      return result;
    });
  }

  /**
   * Describes several images: their vision towers run as one batch and their sequences decode
   * together, one weight pass per step for the whole batch, `concurrency` at a time. Results
   * come back in the order of `items`.
   */
  async describeMany(items: DescribeItem[], options: DescribeManyOptions = {}): Promise<GenerationResult[]> {
    checkOptions(options, 'describeMany');
    if (Array.isArray(items)) for (const item of items) checkOptions(item, 'describeMany item');
    return this.#enqueue(async () => {
      if (!Array.isArray(items)) throw new PaliGemmaError('BAD_ARGUMENT', 'describeMany(items): items must be an array');
      const concurrency = options.concurrency ?? 4;
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_BATCH)
        throw new PaliGemmaError('BAD_ARGUMENT', `concurrency must be an integer in 1..${MAX_BATCH}, got ${concurrency}`);
      // Validate everything before any heavy work.
      const ids = items.map((item) => this.#promptIds(item?.prompt ?? DEFAULT_PROMPT, this.imageTokens));
      const maxTokens = items.map((item, i) => this.#checkGeneration({ ...item, signal: options.signal }, this.imageTokens + ids[i].length, true));
      const results: GenerationResult[] = [];
      try {
        for (let at = 0; at < items.length; at += concurrency) {
          const end = Math.min(items.length, at + concurrency);
          results.push(...(await this.#describeBatch(items.slice(at, end), ids.slice(at, end), maxTokens.slice(at, end), options.signal)));
        }
      } finally {
        this.#native.releaseSequences(1);
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

  /** Text-only generation from raw token ids (no image). */
  async generate(input: GenerateInput): Promise<GenerationResult> {
    checkOptions(input, 'generate');
    return this.#enqueue(async () => {
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
      const t0 = performance.now();
      const first = await this.#native.prefill(0, null, ids);
      const [result] = await this.#decodeLoop([first.logits], [ids.length], [maxTokens], [input], input.signal);
      result.timings.prefillMs = performance.now() - t0 - result.timings.decodeMs;
      return result;
    });
  }

  /** One prefix pass with every intermediate exposed (for tests against a reference, and tooling). */
  async evaluate(input: EvaluateInput): Promise<Evaluation> {
    checkOptions(input, 'evaluate');
    return this.#enqueue(async () => {
      if (typeof input?.prompt !== 'string') throw new PaliGemmaError('BAD_ARGUMENT', 'evaluate({ prompt }): prompt must be a string');
      const k = input.topK ?? 10;
      if (!Number.isInteger(k) || k < 1 || k > 1000) throw new PaliGemmaError('BAD_ARGUMENT', `topK must be an integer in 1..1000, got ${k}`);
      const withImage = input.image !== undefined || input.pixelValues !== undefined;
      const nImage = withImage ? this.imageTokens : 0;
      const ids = this.#promptIds(input.prompt, nImage);
      const n = nImage + ids.length;
      if (n > this.contextLength) throw this.#overflow(n, 0); // before any heavy work
      let vision: { visionOut: Float32Array; features: Float32Array } | undefined;
      if (withImage) {
        const { pixelValues } = await this.#pixels(input.pixelValues ? { pixelValues: input.pixelValues } : input.image!);
        vision = await this.#native.encodeImages(pixelValues);
      }
      // Every row's top-k is selected natively, a bounded chunk of logit rows at a time; only the last row comes whole.
      const kept = Math.min(k, this.#files.text.vocabSize);
      const out = await this.#native.prefill(0, vision?.features ?? null, ids, { topK: kept, capture: true });
      const topk = Array.from({ length: n }, (_, i) => ({
        ids: out.topIds!.slice(i * kept, (i + 1) * kept),
        logits: out.topLogits!.slice(i * kept, (i + 1) * kept),
      }));
      const inputIds = new Int32Array(n);
      inputIds.fill(this.#imageTokenId ?? -1, 0, nImage);
      inputIds.set(ids, nImage);
      return {
        inputIds,
        visionOutput: vision?.visionOut,
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
   * Releases the native model and unmaps the files. Calls still queued reject with a DISPOSED
   * error; a call in progress stops at its next step. Safe to call twice: every call resolves once
   * the memory is released.
   */
  dispose(): Promise<void> {
    this.#released ??= (async () => {
      this.#disposed = true;
      await this.#tail;
      this.#native.dispose();
    })();
    return this.#released;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** Runs `call` after every earlier call settled. */
  #enqueue<T>(call: () => Promise<T>): Promise<T> {
    if (this.#disposed) return Promise.reject(this.#disposedError());
    const run = this.#tail.then(() => {
      if (this.#disposed) throw this.#disposedError();
      return call();
    });
    this.#tail = run.catch(() => {});
    return run;
  }

  #disposedError(): PaliGemmaError {
    return new PaliGemmaError('DISPOSED', 'the model has been disposed; load it again to use it');
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

  /**
   * Vision features for each image: from the cache, or one vision batch for the images not in it.
   * Returns the features and whether each came from the cache.
   */
  async #imageFeatures(pixels: Float32Array[]): Promise<{ features: Float32Array[]; hits: boolean[] }> {
    const keys = pixels.map(pixelKey);
    const features = keys.map((k) => this.#imageCache.get(k));
    const hits = features.map((f) => f !== undefined);
    const missing = features.flatMap((f, i) => (f === undefined ? [i] : []));
    if (missing.length > 0) {
      const batch = new Float32Array(missing.length * pixels[0].length);
      missing.forEach((i, j) => batch.set(pixels[i], j * pixels[0].length));
      const out = (await this.#native.encodeImages(batch)).features;
      const size = out.length / missing.length;
      missing.forEach((i, j) => {
        features[i] = out.slice(j * size, (j + 1) * size);
        this.#imageCache.set(keys[i], features[i]!);
      });
    }
    return { features: features as Float32Array[], hits };
  }

  /** Preprocess, vision (batched), prefill each sequence, then decode them together. */
  async #describeBatch(
    items: (DescribeItem | (DescribeOptions & { image: ModelImage }))[],
    ids: Int32Array[],
    maxTokens: number[],
    signal: AbortSignal | undefined,
  ): Promise<GenerationResult[]> {
    const t0 = performance.now();
    const images = await Promise.all(items.map((item) => this.#pixels(item.image)));
    const t1 = performance.now();
    signal?.throwIfAborted();
    const { features, hits } = await this.#imageFeatures(images.map((im) => im.pixelValues));
    const t2 = performance.now();
    const firstLogits: Float32Array[] = [];
    for (let i = 0; i < items.length; i++) {
      signal?.throwIfAborted();
      if (this.#disposed) throw this.#disposedError();
      firstLogits.push((await this.#native.prefill(i, features[i], ids[i])).logits);
    }
    const t3 = performance.now();
    const results = await this.#decodeLoop(
      firstLogits,
      ids.map((x) => this.imageTokens + x.length),
      maxTokens,
      items,
      signal,
    );
    results.forEach((r, i) => {
      Object.assign(r.timings, { preprocessMs: t1 - t0, visionMs: t2 - t1, prefillMs: t3 - t2, imageCacheHit: hits[i] });
      r.image = { width: images[i].width, height: images[i].height };
    });
    return results;
  }

  /**
   * Decodes sequences 0..B-1 (already prefilled; `logits` are their first-step logits) together
   * until each reaches `<eos>` or its maxTokens, or the signal aborts or the model is disposed.
   */
  async #decodeLoop(
    logits: Float32Array[],
    promptTokens: number[],
    maxTokens: number[],
    options: GenerationOptions[],
    signal: AbortSignal | undefined,
  ): Promise<GenerationResult[]> {
    const vocab = this.#files.text.vocabSize;
    const eos = this.tokenizer.eosId;
    const t0 = performance.now();
    const seqs = logits.map((l, i) => ({
      index: i,
      logits: l,
      sample: createSampler(options[i], this.#files.text.vocabSize),
      decoder: this.tokenizer.createStreamDecoder(),
      onToken: options[i].onToken,
      tokens: [] as number[],
      text: '',
      stopReason: 'maxTokens' as GenerationResult['stopReason'],
      steps: 0,
      done: false,
    }));
    const emit = (s: (typeof seqs)[number], piece: string, id: number) => {
      if (!piece) return;
      s.text += piece;
      s.onToken?.(piece, id);
    };
    while (true) {
      // Pick each running sequence's next token; the ones that go on are fed back together.
      const next: (typeof seqs)[number][] = [];
      for (const s of seqs) {
        if (s.done) continue;
        const id = s.sample(s.logits);
        if (id === eos) {
          s.stopReason = 'eos';
          s.done = true;
          continue;
        }
        s.tokens.push(id);
        emit(s, s.decoder.push(id), id);
        if (s.tokens.length >= maxTokens[s.index]) s.done = true;
        else next.push(s);
      }
      if (next.length === 0) break;
      signal?.throwIfAborted();
      for (const o of options) o.signal?.throwIfAborted();
      if (this.#disposed) throw this.#disposedError();
      const out = await this.#native.decode(
        Int32Array.from(next, (s) => s.index),
        Int32Array.from(next, (s) => s.tokens[s.tokens.length - 1]),
      );
      next.forEach((s, b) => {
        s.logits = out.subarray(b * vocab, (b + 1) * vocab);
        s.steps++;
      });
    }
    const decodeMs = performance.now() - t0;
    return seqs.map((s) => {
      emit(s, s.decoder.flush(), s.tokens[s.tokens.length - 1]);
      return {
        text: s.text,
        tokens: s.tokens,
        stopReason: s.stopReason,
        timings: {
          preprocessMs: 0,
          visionMs: 0,
          prefillMs: 0,
          decodeMs,
          promptTokens: promptTokens[s.index],
          generatedTokens: s.tokens.length,
          tokensPerSecond: s.steps > 0 ? (s.steps * 1000) / decodeMs : 0,
          imageCacheHit: false,
        },
      };
    });
  }
}
