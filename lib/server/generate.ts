/**
 * One generation for either API: the model call with stop sequences, token streaming, the three
 * ways it can end early (the client leaves, the server cuts it, a stop sequence appears), and the
 * counts and durations both APIs report. It only uses the model's public API (describe with
 * `signal` and `onToken`), so concurrent requests are concurrent model calls, which the model's
 * scheduler batches into shared decode steps.
 */
import { performance } from 'node:perf_hooks';

import type { PaliGemma } from '../model/paligemma.js';
import type { SamplingOptions } from '../model/sampling.js';
import { DEFAULT_MAX_TOKENS } from '../model/types.js';
import type { SegmentationDecoder } from '../tasks/segmentation.js';
import { StopMatcher } from './stop.js';
import { taskResult, type TaskResult } from './task-result.js';

/**
 * What the server uses of a model: the public API of {@link PaliGemma}. The optional members add
 * KV-memory admission (`kvBytesPerPosition`), load figures (`sequences`), masks for segment
 * prompts (`segmentation`), file details (`files`) and image checks before admission
 * (`probeImage`) when the model has them.
 */
export type ServedModel = Pick<PaliGemma, 'describe' | 'tokenizer' | 'imageTokens' | 'contextLength'> &
  Partial<Pick<PaliGemma, 'sequences' | 'kvBytesPerPosition' | 'segmentation' | 'files' | 'probeImage'>>;

/** A generation request, already validated. */
export interface Generation extends SamplingOptions {
  /** The encoded image. */
  image: Uint8Array;
  /** PaliGemma's task prefix, e.g. `caption en`. */
  prompt: string;
  /** At most this many tokens (capped to what fits the context); undefined = the model's default. */
  maxTokens?: number;
  stop: string[];
}

/** How a generation ended, with what both APIs report. */
export interface GenerationOutcome {
  text: string;
  /**
   * `stop`: `<eos>` or a stop sequence; `length`: the token limit, or the server cut the
   * generation short (request timeout, shutdown) after it had produced text.
   */
  doneReason: 'stop' | 'length';
  /** Prompt positions (image tokens included). */
  promptTokens: number;
  generatedTokens: number;
  /** Image preprocessing, vision tower and prefill, in nanoseconds. */
  promptEvalNs: number;
  /** Decoding, in nanoseconds. */
  evalNs: number;
  /** Parsed boxes/masks for detect and segment prompts that ran to their end. */
  task?: TaskResult;
}

export interface GenerationControl {
  /** Aborts when the client is gone; the call then rejects with its reason. */
  signal: AbortSignal;
  /**
   * Aborts when the server cuts the generation (timeout, shutdown). With text already produced
   * the generation ends normally (`length`); before that, the call rejects with the reason.
   */
  cut: AbortSignal;
  /** Called with text as it can be sent (stop sequences held back). */
  onText?: (text: string) => void;
  decoder?: SegmentationDecoder;
}

/** The abort reason used when a stop sequence appears. */
const STOP_SEQUENCE = new Error('stop sequence');

const ns = (ms: number) => Math.round(ms * 1e6);

/** Prompt positions of `prompt` with an image: image tokens, `<bos>`, the prompt, `\n`. */
export function promptPositions(model: ServedModel, prompt: string): number {
  return model.imageTokens + 1 + model.tokenizer.encode(prompt + '\n', { addBos: false }).length;
}

/**
 * The positions a generation may fill: its prompt, and the tokens it may generate — its own limit
 * (default the model's) cut to what fits the context, as the call will be made.
 */
export function generationSize(model: ServedModel, g: Pick<Generation, 'prompt' | 'maxTokens'>): { promptTokens: number; maxTokens: number } {
  const promptTokens = promptPositions(model, g.prompt);
  // The last generated token is never fed back, so it needs no position.
  const fits = Math.max(1, model.contextLength - promptTokens + 1);
  return { promptTokens, maxTokens: Math.min(g.maxTokens ?? DEFAULT_MAX_TOKENS, fits) };
}

export async function runGeneration(model: ServedModel, g: Generation, control: GenerationControl): Promise<GenerationOutcome> {
  const stop = new StopMatcher(g.stop);
  const abort = new AbortController();
  for (const s of [control.signal, control.cut]) {
    if (s.aborted) abort.abort(s.reason);
    else s.addEventListener('abort', () => abort.abort(s.reason), { once: true });
  }
  let text = '';
  const emit = (piece: string) => {
    if (!piece) return;
    text += piece;
    control.onText?.(piece);
  };
  const { promptTokens, maxTokens } = generationSize(model, g);
  let pieces = 0;
  let first: number | undefined;
  const start = performance.now();
  try {
    const r = await model.describe(g.image, {
      prompt: g.prompt,
      maxTokens,
      temperature: g.temperature,
      topK: g.topK,
      topP: g.topP,
      seed: g.seed,
      signal: abort.signal,
      onToken: (piece) => {
        pieces++;
        first ??= performance.now();
        emit(stop.push(piece));
        if (stop.stopped) abort.abort(STOP_SEQUENCE);
      },
    });
    // A stop sequence in the last token ends the call normally: it is still a stop.
    if (stop.stopped) return earlyEnd('stop');
    emit(stop.flush());
    const t = r.timings;
    return {
      text,
      doneReason: r.stopReason === 'eos' ? 'stop' : 'length',
      promptTokens: t.promptTokens,
      generatedTokens: t.generatedTokens,
      promptEvalNs: ns(t.preprocessMs + t.visionMs + t.prefillMs),
      evalNs: ns(t.decodeMs),
      task: r.image && (await taskResult(g.prompt, r.text, r.image, control.decoder)),
    };
  } catch (err) {
    const reason: unknown = abort.signal.reason;
    if (!abort.signal.aborted || err !== reason) throw err;
    if (reason === STOP_SEQUENCE) return earlyEnd('stop');
    if (control.cut.aborted && reason === control.cut.reason && pieces > 0) {
      emit(stop.flush());
      return earlyEnd('length');
    }
    throw reason;
  }

  /** The outcome of a call that did not return a result: counts and durations measured here. */
  function earlyEnd(doneReason: GenerationOutcome['doneReason']): GenerationOutcome {
    const end = performance.now();
    return {
      text,
      doneReason,
      promptTokens,
      generatedTokens: pieces,
      promptEvalNs: ns((first ?? end) - start),
      evalNs: ns(end - (first ?? end)),
    };
  }
}
