/**
 * The step scheduler: the only caller of a model's native handle, which runs one call at a time.
 * Every call in flight is a sequence in a slot of the native model (at most `maxSequences`, which
 * is at most the native 64); further calls wait in a queue. Each step is one native call:
 *
 *  - a decode step: every generating sequence appends its next token, in one pass over the weights;
 *  - or one piece of work for the oldest sequence that is starting: the vision tower for the images
 *    waiting for it (one batch; a call cannot be split), or a chunk of its prefill.
 *
 * While sequences generate, steps alternate between the two, so a starting sequence holds the
 * running ones up by at most one chunk per token. PaliGemma's prompt attends bidirectionally, so a
 * prefill can be split only by layers (native prefill `{ layers }` + continuePrefill). A chunk is
 * as many layers as take about one decode step — measured as the model runs (moving averages of the
 * decode step and of a prefill layer per prompt row) and at least one layer — so running sequences
 * go at least half their speed while a prompt is read, and the prompt is read in about twice its
 * time alone. The vision tower gets the same budget while sequences generate: as many waiting images
 * as fit it (at least one arrival group, e.g. describeMany's first wave); with none generating, every
 * waiting image goes in one batch.
 *
 * New sequences join between steps; finished and aborted ones leave at once, and their KV cache is
 * freed then — or right after the native call in flight, which cannot be interrupted. An aborted
 * call rejects as soon as its signal fires.
 */
import { performance } from 'node:perf_hooks';

import { PaliGemmaError } from '../errors.js';
import type { NativeModel, NativePrefillDone } from '../native.js';
import { pixelKey, type ByteLru } from './cache.js';

/** The native model's sequence slots (kMaxBatch in native/model/paligemma.h). */
export const NATIVE_MAX_SEQUENCES = 64;

/** The smallest time budget of a prefill chunk (before the first decode step is measured, and on tiny models). */
const MIN_CHUNK_MS = 50;
/** Weight of the newest measurement in the moving averages. */
const EWMA_WEIGHT = 0.3;

/** One sequence to run: its prompt, and how it picks its tokens. */
export interface SequenceJob {
  /** The image rows: pixels ([3, S, S]) for the vision tower; `cache` lets the image cache serve them. */
  image?: { pixels: Float32Array; cache: boolean };
  /** The token rows after the image rows. */
  ids: Int32Array;
  /** KV positions to reserve at the prefill: the prompt's rows and the tokens it may generate (default: the prompt's; the cache grows by doubling past it). */
  capacity?: number;
  /** Logits of the prompt's last rows to return (default 1); every row's `topK` best logits; every intermediate (evaluate). */
  logitsRows?: number;
  topK?: number;
  capture?: boolean;
  /**
   * Called with the logits after the prefill (its logits rows) and after each decode step (one
   * row): the token to feed next, or undefined when the sequence is done. May throw: the sequence
   * then fails with that error. A decode step's logits are valid only during the call: the next
   * step overwrites them.
   */
  next(logits: Float32Array): number | undefined;
  /** Aborts the sequence: it rejects with the signal's reason at once and leaves. */
  signal?: AbortSignal;
}

/** Wall-clock milliseconds of a sequence's phases; under batching they include the other sequences' steps interleaved with its own. */
export interface SequenceTimings {
  /** Waiting for a free slot. */
  queueMs: number;
  /** From the slot to the image features (0 when the image cache had them, or without an image). */
  visionMs: number;
  /** From the features to the end of the prefill. */
  prefillMs: number;
  /** From the end of the prefill to the last token. */
  decodeMs: number;
  /** Decode steps the sequence took part in. */
  steps: number;
  imageCacheHit: boolean;
}

/** How a sequence ended. */
export interface SequenceOutcome {
  /** The prefill's output (its logits rows, and intermediates when `capture`). */
  prefill: NativePrefillDone;
  /** The vision tower's output for this sequence's image, when it was run for it (not from the cache). */
  vision?: { visionOut: Float32Array; features: Float32Array };
  timings: SequenceTimings;
}

export interface SchedulerOptions {
  /** Sequences with a slot at once, 1..64. */
  maxSequences: number;
  /** Layers per prefill chunk; undefined = measured (see above). */
  prefillChunkLayers?: number;
  nLayers: number;
  vocab: number;
  /** Prompt rows of an image. */
  imageRows: number;
  /** Bytes of KV cache per position of a sequence. */
  kvBytesPerPosition: number;
  imageCache: ByteLru<Float32Array>;
}

type State = 'queued' | 'vision' | 'prefill' | 'decode' | 'over';

interface Sequence {
  job: SequenceJob;
  /** The submit() call it came with: the vision tower takes a group whole. */
  group: object;
  state: State;
  slot: number;
  /** The native slot holds state for it (a prefill was started), to free when it leaves. */
  native: boolean;
  /** Prompt rows (image + ids). */
  rows: number;
  /** Prefill layers run so far. */
  layersDone: number;
  /** Positions its KV cache holds. */
  length: number;
  /** The image's cache key ('' when it is not cached). */
  key: string;
  features?: Float32Array;
  vision?: SequenceOutcome['vision'];
  prefill?: NativePrefillDone;
  /** The token to feed at the next decode step. */
  nextId: number;
  /** Marks: submitted, admitted, features ready, prefill done. */
  t: { submitted: number; admitted: number; features: number; prefilled: number };
  steps: number;
  imageCacheHit: boolean;
  resolve(outcome: SequenceOutcome): void;
  reject(err: unknown): void;
  unlisten(): void;
}

/** What the scheduler holds, for admission control and monitoring. */
export interface SchedulerLoad {
  /** Sequences holding a slot: starting, generating, or left during the native call in flight (freed when it returns). */
  active: number;
  /** Calls waiting for a slot. */
  queued: number;
  /** The most sequences with a slot at once. */
  maxSequences: number;
  /** Bytes of KV cache the active sequences hold (positions filled × bytes per position). */
  kvBytes: number;
}

export class Scheduler {
  readonly #native: NativeModel;
  readonly #o: SchedulerOptions;
  /** Where decode steps write their logits (see #decodeStep). */
  #logits = new Float32Array(0);
  /** In order of arrival. */
  readonly #queued: Sequence[] = [];
  /** In order of admission. */
  readonly #active: Sequence[] = [];
  readonly #freeSlots: number[];
  /** Slots of sequences that left during the call in flight, freed natively when it returns, and the positions they hold. */
  readonly #toRelease: { slot: number; length: number }[] = [];
  #busy = false;
  #looping = false;
  #idle: Promise<void> = Promise.resolve();
  #wake: (() => void) | undefined;
  #lastWasDecode = false;
  #closed: Error | undefined;
  /** Moving averages: a decode step; a prefill layer per prompt row; an image through the tower. */
  #stepMs: number | undefined;
  #layerRowMs: number | undefined;
  #imageMs: number | undefined;

  constructor(handle: NativeModel, options: SchedulerOptions) {
    this.#native = handle;
    this.#o = options;
    this.#freeSlots = Array.from({ length: options.maxSequences }, (_, i) => i);
  }

  get load(): SchedulerLoad {
    const held = [...this.#active, ...this.#toRelease];
    return {
      active: held.length,
      queued: this.#queued.length,
      maxSequences: this.#o.maxSequences,
      kvBytes: held.reduce((n, s) => n + s.length, 0) * this.#o.kvBytesPerPosition,
    };
  }

  /**
   * Runs the jobs as sequences; jobs submitted together are one group (their images go through the
   * vision tower in one batch). Each promise resolves when its sequence is done, or rejects with the
   * signal's reason, the error of its `next`, a native error, or the close() error.
   */
  submit(jobs: SequenceJob[]): Promise<SequenceOutcome>[] {
    const group = {};
    return jobs.map(
      (job) =>
        new Promise<SequenceOutcome>((resolve, reject) => {
          if (this.#closed) return reject(this.#closed);
          if (job.signal?.aborted) return reject(job.signal.reason);
          const s: Sequence = {
            job,
            group,
            state: 'queued',
            slot: -1,
            native: false,
            rows: (job.image ? this.#o.imageRows : 0) + job.ids.length,
            layersDone: 0,
            key: '',
            length: 0,
            nextId: -1,
            t: { submitted: performance.now(), admitted: 0, features: 0, prefilled: 0 },
            steps: 0,
            imageCacheHit: false,
            resolve,
            reject,
            unlisten: () => {},
          };
          const signal = job.signal;
          if (signal) {
            const onAbort = () => this.#fail(s, signal.reason);
            signal.addEventListener('abort', onAbort, { once: true });
            s.unlisten = () => signal.removeEventListener('abort', onAbort);
          }
          this.#queued.push(s);
          this.#kick();
        }),
    );
  }

  /**
   * Refuses every queued and future call with `error`; active sequences fail with it before their
   * next native step (a sequence that needs none completes). See idle().
   */
  close(error: Error): void {
    this.#closed ??= error;
    for (const s of [...this.#queued]) this.#fail(s, error);
    this.#kick();
  }

  /** Resolves when no native call is in flight or due (after close(): when every sequence has left). */
  idle(): Promise<void> {
    return this.#idle;
  }

  /** Starts the step loop unless it runs: on the next turn, so that calls made together start together. */
  #kick(): void {
    if (this.#looping) return;
    this.#looping = true;
    this.#idle = new Promise((resolve) => (this.#wake = resolve));
    setImmediate(() => void this.#loop());
  }

  async #loop(): Promise<void> {
    try {
      for (let step = this.#nextStep(); step; step = this.#nextStep()) {
        try {
          await step();
        } catch (err) {
          // Steps deliver their errors to the sequences concerned; anything else is a bug, which
          // must not leave calls hanging.
          for (const s of [...this.#active]) this.#fail(s, err);
        }
      }
    } finally {
      this.#looping = false;
      this.#wake?.();
    }
  }

  /** The next native call to make, or undefined when there is nothing to do. */
  #nextStep(): (() => Promise<void>) | undefined {
    if (this.#closed) for (const s of [...this.#active]) this.#fail(s, this.#closed);
    this.#admit();
    const generating = this.#active.filter((s) => s.state === 'decode');
    const starting = this.#active.find((s) => s.state === 'vision' || s.state === 'prefill');
    if (generating.length > 0 && (!starting || !this.#lastWasDecode)) {
      this.#lastWasDecode = true;
      return () => this.#decodeStep(generating);
    }
    this.#lastWasDecode = false;
    if (!starting) return undefined;
    return starting.state === 'vision' ? () => this.#visionStep(generating.length > 0) : () => this.#prefillStep(starting);
  }

  /** Gives queued calls the free slots; an image already in the cache skips the vision step. */
  #admit(): void {
    while (this.#queued.length > 0 && this.#freeSlots.length > 0) {
      const s = this.#queued.shift()!;
      this.#freeSlots.sort((a, b) => a - b);
      s.slot = this.#freeSlots.shift()!;
      s.t.admitted = s.t.features = performance.now();
      s.state = 'prefill';
      const image = s.job.image;
      if (image) {
        // No cache key when the cache is off: hashing the pixels would be for nothing.
        s.key = image.cache && this.#o.imageCache.maxBytes > 0 ? pixelKey(image.pixels) : '';
        if (!this.#fromCache(s)) s.state = 'vision';
      }
      this.#active.push(s);
    }
  }

  /** A chunk's time budget: about one decode step. */
  #chunkBudgetMs(): number {
    return Math.max(MIN_CHUNK_MS, this.#stepMs ?? 0);
  }

  async #decodeStep(seqs: Sequence[]): Promise<void> {
    const t0 = performance.now();
    const vocab = this.#o.vocab;
    // One array for every step's logits, grown with the batch: a fresh one per step (a megabyte a
    // row) would pile up as garbage in the resident memory until V8 collects it.
    if (this.#logits.length < seqs.length * vocab) this.#logits = new Float32Array(seqs.length * vocab);
    const logits = this.#logits;
    try {
      await this.#call(() =>
        this.#native.decode(Int32Array.from(seqs, (s) => s.slot), Int32Array.from(seqs, (s) => s.nextId), logits),
      );
    } catch (err) {
      for (const s of seqs) this.#fail(s, err);
      return;
    }
    this.#stepMs = average(this.#stepMs, performance.now() - t0);
    seqs.forEach((s, b) => {
      if (s.state !== 'decode') return; // left during the step
      s.steps++;
      s.length++;
      this.#advance(s, logits.subarray(b * vocab, (b + 1) * vocab));
    });
  }

  /**
   * The vision tower for the images waiting for it, whole groups in order of arrival: all of them
   * when no sequence is generating, else as many as fit a chunk's budget (at least one group).
   * Identical images are encoded once; images the cache got meanwhile are not encoded again.
   */
  async #visionStep(generating: boolean): Promise<void> {
    const waiting = this.#active.filter((s) => s.state === 'vision' && !this.#fromCache(s));
    const limit = !generating
      ? NATIVE_MAX_SEQUENCES
      : this.#imageMs === undefined
        ? 1
        : Math.max(1, Math.min(NATIVE_MAX_SEQUENCES, Math.floor(this.#chunkBudgetMs() / this.#imageMs)));
    const batch: Sequence[] = [];
    for (const group of new Set(waiting.map((s) => s.group))) {
      const members = waiting.filter((s) => s.group === group);
      if (batch.length > 0 && batch.length + members.length > limit) break;
      batch.push(...members);
      if (batch.length >= limit) break;
    }
    if (batch.length === 0) return;
    // Each sequence's image in the batch: the first sequence with a cache key brings it, the others share it.
    const images: Sequence[] = [];
    const first = new Map<string, number>();
    const imageOf = batch.map((s) => {
      const known = s.key ? first.get(s.key) : undefined;
      if (known !== undefined) return known;
      if (s.key) first.set(s.key, images.length);
      return images.push(s) - 1;
    });
    const size = images[0]!.job.image!.pixels.length;
    const pixels = new Float32Array(images.length * size);
    images.forEach((s, i) => pixels.set(s.job.image!.pixels, i * size));
    const t0 = performance.now();
    let out: { visionOut: Float32Array; features: Float32Array };
    try {
      out = await this.#call(() => this.#native.encodeImages(pixels));
    } catch (err) {
      for (const s of batch) this.#fail(s, err);
      return;
    }
    const now = performance.now();
    this.#imageMs = average(this.#imageMs, (now - t0) / images.length);
    const featureSize = out.features.length / images.length;
    const visionSize = out.visionOut.length / images.length;
    const features = images.map((s, i) => {
      const f = out.features.slice(i * featureSize, (i + 1) * featureSize);
      if (s.key) this.#o.imageCache.set(s.key, f);
      return f;
    });
    batch.forEach((s, b) => {
      if (s.state !== 'vision') return; // left during the step
      const i = imageOf[b]!;
      s.features = features[i];
      s.vision = { visionOut: out.visionOut.subarray(i * visionSize, (i + 1) * visionSize), features: features[i]! };
      s.t.features = now;
      s.state = 'prefill';
    });
  }

  /** Takes `s`'s image features from the cache, if there; true when it did. */
  #fromCache(s: Sequence): boolean {
    const cached = s.key ? this.#o.imageCache.get(s.key) : undefined;
    if (!cached) return false;
    s.features = cached;
    s.imageCacheHit = true;
    s.t.features = performance.now();
    s.state = 'prefill';
    return true;
  }

  /** The next chunk of `s`'s prefill. */
  async #prefillStep(s: Sequence): Promise<void> {
    const layers = Math.min(this.#chunkLayers(s), this.#o.nLayers - s.layersDone);
    const started = s.native;
    s.native = true;
    const t0 = performance.now();
    let out: Awaited<ReturnType<NativeModel['continuePrefill']>>;
    try {
      out = await this.#call(() =>
        started
          ? this.#native.continuePrefill(s.slot, layers)
          : this.#native.prefill(s.slot, s.features ?? null, s.job.ids, {
              layers,
              logitsRows: s.job.logitsRows,
              topK: s.job.topK,
              capture: s.job.capture,
              capacity: s.job.capacity,
            }),
      );
    } catch (err) {
      this.#fail(s, err);
      return;
    }
    this.#layerRowMs = average(this.#layerRowMs, (performance.now() - t0) / (layers * s.rows));
    s.layersDone += layers;
    if (s.state !== 'prefill' || !out.done) return; // left during the step, or layers to go
    s.prefill = out;
    s.length = s.rows;
    s.t.prefilled = performance.now();
    s.state = 'decode';
    this.#advance(s, out.logits);
  }

  /** Layers per prefill chunk: the fixed number, or as many as fit a chunk's budget (1 before the first measurement). */
  #chunkLayers(s: Sequence): number {
    if (this.#o.prefillChunkLayers !== undefined) return this.#o.prefillChunkLayers;
    if (this.#layerRowMs === undefined) return 1;
    return Math.max(1, Math.floor(this.#chunkBudgetMs() / (this.#layerRowMs * s.rows)));
  }

  /** Feeds `s` its logits: it goes on with the next token, or is done. */
  #advance(s: Sequence, logits: Float32Array): void {
    let id: number | undefined;
    try {
      id = s.job.next(logits);
    } catch (err) {
      this.#fail(s, err);
      return;
    }
    if (s.state !== 'decode') return; // aborted from inside next (onToken)
    if (id === undefined) this.#finish(s);
    else s.nextId = id;
  }

  #finish(s: Sequence): void {
    const now = performance.now();
    const t = s.t;
    this.#leave(s);
    s.resolve({
      prefill: s.prefill!,
      vision: s.vision,
      timings: {
        queueMs: t.admitted - t.submitted,
        visionMs: t.features - t.admitted,
        prefillMs: t.prefilled - t.features,
        decodeMs: now - t.prefilled,
        steps: s.steps,
        imageCacheHit: s.imageCacheHit,
      },
    });
  }

  #fail(s: Sequence, err: unknown): void {
    if (s.state === 'over') return;
    this.#leave(s);
    s.reject(err);
  }

  /** Takes `s` out of the queue or its slot, and frees its KV cache now or after the call in flight. */
  #leave(s: Sequence): void {
    const was = s.state;
    s.state = 'over';
    s.unlisten();
    if (was === 'queued') {
      this.#queued.splice(this.#queued.indexOf(s), 1);
      return;
    }
    this.#active.splice(this.#active.indexOf(s), 1);
    if (!s.native) this.#freeSlots.push(s.slot);
    else if (this.#busy) this.#toRelease.push({ slot: s.slot, length: s.length });
    else this.#release(s.slot);
    if (this.#queued.length > 0) this.#kick();
  }

  #release(slot: number): void {
    this.#native.releaseSequence(slot);
    this.#freeSlots.push(slot);
  }

  /** Makes one native call; frees the slots of sequences that left meanwhile. */
  async #call<T>(call: () => Promise<T>): Promise<T> {
    this.#busy = true;
    try {
      return await call();
    } finally {
      this.#busy = false;
      for (const { slot } of this.#toRelease.splice(0)) this.#release(slot);
    }
  }
}

function average(current: number | undefined, sample: number): number {
  return current === undefined ? sample : current + EWMA_WEIGHT * (sample - current);
}

/** The error of a call on a disposed model. */
export function disposedError(): PaliGemmaError {
  return new PaliGemmaError('DISPOSED', 'the model has been disposed; load it again to use it');
}
