/**
 * Choosing the next token from logits: greedy by default, or temperature / top-k / top-p
 * sampling with a seeded generator so runs are reproducible.
 *
 * Every step is O(vocab) plus sorting the candidates that can matter: top-k keeps its k candidates
 * in a bounded heap before sorting them, and top-p sorts only the tokens whose weight can change the
 * cumulative sum (an insertion sort used to stall the event loop 8.8 s per token at `topK: 50000`).
 * The choice is the same as the plain full-sort algorithm's, bit for bit.
 */
import { PaliGemmaError } from '../errors.js';

/** How to pick each generated token. The default (no options) is greedy. */
export interface SamplingOptions {
  /** 0 (default) is greedy; higher values flatten the distribution. */
  temperature?: number;
  /** Keep only the k most likely tokens: an integer from 0 (default: no limit) to the vocabulary size. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = no limit). */
  topP?: number;
  /** Seed of the random generator (sampling only). */
  seed?: number;
}

/** Index of the largest logit (the first one on ties, like torch.argmax). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = logits[0];
  for (let i = 1; i < logits.length; i++) {
    if (logits[i] > bestValue) {
      bestValue = logits[i];
      best = i;
    }
  }
  return best;
}

/** The k largest logits, sorted descending (ties: lower id first). About O(n) for k ≪ n, O(n log k) at worst. */
export function topK(logits: Float32Array, k: number): { ids: Int32Array; logits: Float32Array } {
  const ids = rankedIds(logits, k);
  return { ids, logits: Float32Array.from(ids, (i) => logits[i]) };
}

/** A small seedable PRNG (mulberry32): uniform floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Validates sampling options, throwing a PaliGemmaError BAD_ARGUMENT that names the bad one. `vocabSize`,
 * when given, is the upper bound of `topK`.
 */
export function checkSampling(o: SamplingOptions, vocabSize?: number): void {
  const bad = (message: string) => new PaliGemmaError('BAD_ARGUMENT', message);
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature)))
    throw bad(`temperature must be a finite number >= 0, got ${o.temperature}`);
  const maxK = vocabSize ?? Number.MAX_SAFE_INTEGER;
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0 && o.topK <= maxK))
    throw bad(`topK must be an integer from 0 (no limit) to ${vocabSize === undefined ? 'the vocabulary size' : `the vocabulary size ${vocabSize}`}, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw bad(`topP must be in (0, 1], got ${o.topP}`);
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw bad(`seed must be an integer, got ${o.seed}`);
}

/**
 * Weights below 2^-54 cannot change a running sum that is already ≥ 1 (they are under half its last bit), and the
 * cumulative sum of top-p starts with the most likely token's weight, exactly 1. So such tokens never decide
 * anything and need not be sorted.
 */
const NEGLIGIBLE_WEIGHT = 2 ** -54;

/** Returns a function that picks the next token id from a row of logits (`vocabSize` bounds `topK`, see checkSampling). */
export function createSampler(o: SamplingOptions = {}, vocabSize?: number): (logits: Float32Array) => number {
  checkSampling(o, vocabSize);
  const temperature = o.temperature ?? 0;
  if (temperature === 0) return argmax;
  const random = seededRandom(o.seed ?? 0x5eed);
  const k = o.topK ?? 0;
  const p = o.topP ?? 1;
  const weight = (logit: number, max: number) => Math.exp((logit - max) / temperature);
  return (logits) => {
    // Candidates, most likely first when a cut-off needs the order; undefined = every id, in id order.
    let candidates: Int32Array | undefined;
    if (k > 0) candidates = rankedIds(logits, k);
    else if (p < 1) {
      let max = -Infinity;
      for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
      candidates = rankedIds(logits, logits.length, Number.isFinite(max) ? (v) => weight(v, max) >= NEGLIGIBLE_WEIGHT : undefined);
    }
    const count = candidates ? candidates.length : logits.length;
    const id = (i: number) => (candidates ? candidates[i] : i);
    let max = -Infinity;
    for (let i = 0; i < count; i++) max = Math.max(max, logits[id(i)]);
    const weights = new Float64Array(count);
    for (let i = 0; i < count; i++) weights[i] = weight(logits[id(i)], max);
    let kept = count;
    if (p < 1) {
      let total = 0;
      for (let i = 0; i < count; i++) total += weights[i];
      let mass = 0;
      for (let i = 0; i < count; i++) {
        mass += weights[i];
        if (mass >= p * total) {
          kept = i + 1;
          break;
        }
      }
    }
    let keptTotal = 0;
    for (let i = 0; i < kept; i++) keptTotal += weights[i];
    let r = random() * keptTotal;
    for (let i = 0; i < kept; i++) {
      r -= weights[i];
      if (r < 0) return id(i);
    }
    return id(kept - 1);
  };
}

/** Ids below this fit beside a 32-bit rank in a double's 53 bits (see rankKey). */
const KEYED_IDS = 2 ** 21;

/**
 * The ids of the `k` largest logits (all when k ≥ n) among those `keep` accepts (all by default), most likely first,
 * ties by lower id. For k < n a bounded heap holds the best k seen so far, and most logits are turned away by one
 * comparison with its worst (O(n) for k ≪ n, O(n log k) at worst); then only the chosen are sorted.
 */
function rankedIds(logits: Float32Array, k: number, keep?: (logit: number) => boolean): Int32Array {
  const n = logits.length;
  if (n > KEYED_IDS) {
    // No vocabulary comes near 2 million ids; a plain sort keeps such rows correct.
    const ids = Int32Array.from({ length: n }, (_, i) => i).filter((i) => !keep || keep(logits[i]));
    return ids.sort((a, b) => compareLogits(logits[a], logits[b]) || a - b).slice(0, k);
  }
  const bits = new Uint32Array(logits.buffer, logits.byteOffset, n);
  let chosen: Float64Array;
  if (k >= n) {
    chosen = new Float64Array(n);
    let m = 0;
    for (let i = 0; i < n; i++) if (!keep || keep(logits[i])) chosen[m++] = rankKey(bits[i], i);
    chosen = chosen.subarray(0, m);
  } else {
    chosen = bestKeys(logits, bits, k, keep);
  }
  chosen.sort();
  return Int32Array.from(chosen, (key) => key % KEYED_IDS);
}

/** The k smallest rank keys (k < n) of the logits `keep` accepts, in no particular order: a max-heap of size k. */
function bestKeys(logits: Float32Array, bits: Uint32Array, k: number, keep?: (logit: number) => boolean): Float64Array {
  const heap = new Float64Array(k);
  let size = 0;
  /** Logit of the worst key held once the heap is full: a later id with a logit ≤ it cannot get in. */
  let worst = NaN;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (size === k && v <= worst) continue;
    if (keep && !keep(v)) continue;
    const key = rankKey(bits[i], i);
    if (size < k) {
      // Sift up.
      let j = size++;
      while (j > 0 && heap[(j - 1) >> 1] < key) {
        heap[j] = heap[(j - 1) >> 1];
        j = (j - 1) >> 1;
      }
      heap[j] = key;
    } else {
      if (key >= heap[0]) continue;
      // Replace the worst and sift down.
      let j = 0;
      for (;;) {
        let child = 2 * j + 1;
        if (child >= k) break;
        if (child + 1 < k && heap[child + 1] > heap[child]) child++;
        if (heap[child] <= key) break;
        heap[j] = heap[child];
        j = child;
      }
      heap[j] = key;
    }
    if (size === k) worst = logits[heap[0] % KEYED_IDS];
  }
  return heap.subarray(0, size);
}

/**
 * One double per id that sorts ascending in sampling order: the logit's float32 bits mapped to an integer that
 * decreases as the logit grows (NaN last, -0 as +0), times 2^21, plus the id. Exact: below 2^53.
 */
function rankKey(bits: number, id: number): number {
  let descending: number;
  if ((bits & 0x7fffffff) > 0x7f800000) descending = 0xffffffff; // NaN
  else {
    if (bits === 0x80000000) bits = 0; // -0 ties with +0
    const ascending = bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
    descending = 0xfffffffe - ascending;
  }
  return descending * KEYED_IDS + id;
}

/** Sampling order of two logits (NaN last), for the plain-sort path. */
function compareLogits(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : -1;
  return b - a || 0;
}
