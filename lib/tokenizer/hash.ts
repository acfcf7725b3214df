/**
 * Hashing for the tokenizer's tables: polynomial hashes modulo a prime with a base drawn at random
 * for each table. A vocabulary (which a model file chooses) cannot be crafted to collide, since the
 * base is unknown when the file is written: two different strings of length ≤ L share a hash for at
 * most L of the ~2^26 bases. A fixed hash (FNV before) let 100k chosen pieces share one slot chain and
 * made building the table quadratic (105 s).
 *
 * The polynomial form also composes: the hash of a concatenation follows from the hashes of its parts
 * (`concat`), so BPE looks up a candidate merge in O(1) whatever the length of its symbols.
 */
import { randomInt } from 'node:crypto';

/** 2^26 - 5, prime: a product of two residues stays below 2^52, exact in a double. */
export const HASH_PRIME = 67108859;
const INV_PRIME = 1 / HASH_PRIME;

/** `x` mod HASH_PRIME for an integer 0 ≤ x < 2^53 (a float estimate of the quotient, corrected by one step). */
export function reduce(x: number): number {
  const r = x - Math.floor(x * INV_PRIME) * HASH_PRIME;
  return r < 0 ? r + HASH_PRIME : r >= HASH_PRIME ? r - HASH_PRIME : r;
}

/** A random base in [256, HASH_PRIME): different for every table, so no input is bad for all of them. */
export function randomBase(): number {
  return randomInt(256, HASH_PRIME);
}

/**
 * Hash of `text[start, end)` (UTF-16 code units) for `base`: Σ unit_i · base^(end-1-i) mod HASH_PRIME. Inside the
 * loop h only stays within (-P, 2P) (the quotient estimate may be one off); |h · base| < 2P² < 2^53 keeps it exact.
 */
export function hashRange(base: number, text: string, start: number, end: number): number {
  let h = 0;
  for (let i = start; i < end; i++) {
    const x = h * base + text.charCodeAt(i);
    h = x - Math.floor(x * INV_PRIME) * HASH_PRIME;
  }
  return h < 0 ? h + HASH_PRIME : h >= HASH_PRIME ? h - HASH_PRIME : h;
}

/**
 * `hashRange` of every string, in one loop: building a table hashes a whole vocabulary before V8 has optimized
 * anything, and one function with the loop inside gets optimized (on stack) far sooner than 257k calls would.
 */
export function hashEach(base: number, strings: string[]): Int32Array {
  const hashes = new Int32Array(strings.length);
  for (let s = 0; s < strings.length; s++) {
    const text = strings[s];
    let h = 0;
    for (let i = 0; i < text.length; i++) {
      const x = h * base + text.charCodeAt(i);
      h = x - Math.floor(x * INV_PRIME) * HASH_PRIME;
    }
    hashes[s] = h < 0 ? h + HASH_PRIME : h >= HASH_PRIME ? h - HASH_PRIME : h;
  }
  return hashes;
}

/** Hash of x·y from hash(x), hash(y) and base^length(y) mod HASH_PRIME. */
export function concat(hx: number, hy: number, powY: number): number {
  return reduce(hx * powY + hy);
}

/** Spreads a hash (or any 32-bit value) over all 32 bits: murmur3's finalizer, so that low bits pick slots well. */
export function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
