/**
 * One call's generated tokens, as the scheduler advances its sequence: sampling, the stop at
 * `<eos>` or maxTokens, and the text streamed to onToken in UTF-8-safe pieces.
 */
import type { Tokenizer } from '../tokenizer/index.js';
import { createSampler } from './sampling.js';
import type { SequenceTimings } from './scheduler.js';
import type { GenerationOptions, GenerationResult } from './types.js';

export class Generation {
  readonly #sample: (logits: Float32Array) => number;
  readonly #decoder: ReturnType<Tokenizer['createStreamDecoder']>;
  readonly #eos: number;
  readonly #maxTokens: number;
  readonly #onToken: GenerationOptions['onToken'];
  readonly #tokens: number[] = [];
  #text = '';
  #stopReason: GenerationResult['stopReason'] = 'maxTokens';

  constructor(options: GenerationOptions, maxTokens: number, tokenizer: Tokenizer, vocabSize: number) {
    this.#sample = createSampler(options, vocabSize);
    this.#decoder = tokenizer.createStreamDecoder();
    this.#eos = tokenizer.eosId;
    this.#maxTokens = maxTokens;
    this.#onToken = options.onToken;
  }

  /** Picks the token after `logits` (one row): the one to feed next, or undefined when done. */
  readonly next = (logits: Float32Array): number | undefined => {
    const id = this.#sample(logits);
    if (id === this.#eos) {
      this.#stopReason = 'eos';
      return undefined;
    }
    this.#tokens.push(id);
    this.#emit(this.#decoder.push(id), id);
    return this.#tokens.length < this.#maxTokens ? id : undefined;
  };

  /** The result once the sequence is done; `timings` are the scheduler's, plus image preprocessing. */
  result(timings: SequenceTimings, promptTokens: number, preprocessMs: number): GenerationResult {
    this.#emit(this.#decoder.flush(), this.#tokens[this.#tokens.length - 1]!);
    const { steps, ...phases } = timings;
    return {
      text: this.#text,
      tokens: this.#tokens,
      stopReason: this.#stopReason,
      timings: {
        preprocessMs,
        ...phases,
        promptTokens,
        generatedTokens: this.#tokens.length,
        tokensPerSecond: steps > 0 ? (steps * 1000) / timings.decodeMs : 0,
      },
    };
  }

  #emit(piece: string, id: number): void {
    if (!piece) return;
    this.#text += piece;
    this.#onToken?.(piece, id);
  }
}
