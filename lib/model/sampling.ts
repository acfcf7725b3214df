/**
 * Choosing the next token from logits: greedy by default, or temperature / top-k / top-p
 * sampling with a seeded generator so runs are reproducible.
 */

/** How to pick each generated token. The default (no options) is greedy. */
export interface SamplingOptions {
  /** 0 (default) is greedy; higher values flatten the distribution. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = no limit). */
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

/** The k largest logits, sorted descending (ties: lower id first). */
export function topK(logits: Float32Array, k: number): { ids: Int32Array; logits: Float32Array } {
  const ids: number[] = [];
  // Insertion into a small sorted list: k is small, the vocabulary is large.
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (ids.length === k && v <= logits[ids[k - 1]]) continue;
    let j = Math.min(ids.length, k - 1);
    while (j > 0 && logits[ids[j - 1]] < v) j--;
    ids.splice(j, 0, i);
    if (ids.length > k) ids.pop();
  }
  return { ids: Int32Array.from(ids), logits: Float32Array.from(ids, (i) => logits[i]) };
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

/** Validates sampling options, throwing a RangeError that names the bad one. */
export function checkSampling(o: SamplingOptions): void {
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature)))
    throw new RangeError(`temperature must be a finite number >= 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0))
    throw new RangeError(`topK must be an integer >= 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${o.topP}`);
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new RangeError(`seed must be an integer, got ${o.seed}`);
}

/** Returns a function that picks the next token id from a row of logits. */
export function createSampler(o: SamplingOptions = {}): (logits: Float32Array) => number {
  checkSampling(o);
  const temperature = o.temperature ?? 0;
  if (temperature === 0) return argmax;
  const random = seededRandom(o.seed ?? 0x5eed);
  const k = o.topK ?? 0;
  const p = o.topP ?? 1;
  return (logits) => {
    // Candidates, most likely first when a cut-off needs the order.
    let candidates: number[];
    if (k > 0) candidates = Array.from(topK(logits, k).ids);
    else if (p < 1) candidates = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
    else candidates = Array.from(logits.keys());
    let max = -Infinity;
    for (const id of candidates) max = Math.max(max, logits[id]);
    const weights = candidates.map((id) => Math.exp((logits[id] - max) / temperature));
    let kept = candidates.length;
    if (p < 1) {
      const total = weights.reduce((s, w) => s + w, 0);
      let mass = 0;
      for (let i = 0; i < candidates.length; i++) {
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
      if (r < 0) return candidates[i];
    }
    return candidates[kept - 1];
  };
}
