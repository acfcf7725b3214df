/**
 * Hostile vocabularies for the tokenizer's tests and fuzzers, and a plain reference tokenizer to check the fast one
 * against on them.
 */
import { PALIGEMMA_PIECE, TokenType, TokenizerError, type VocabTable } from '../../lib/tokenizer/index.js';

/** The piece table's hash before it was seeded: FNV-1a over UTF-16 units (its finalizer is a bijection, so left out). */
function fnvStep(h: number, unit: number): number {
  return Math.imul(h ^ unit, 0x01000193);
}
const FNV_BASIS = 0x811c9dc5 | 0;

/**
 * 2^blocks different strings of 2 × blocks code units that all had the same hash in the old piece table (Joux's
 * multicollision): from each hash state, two different two-unit blocks lead to one same next state, and any choice
 * of block at every step gives the same final state. A vocabulary of them made building the table quadratic.
 */
export function fnvCollidingPieces(blocks: number): string[] {
  const choices: [string, string][] = [];
  let state = FNV_BASIS;
  for (let b = 0; b < blocks; b++) {
    // Two first units whose products agree in the high 16 bits; the second unit then evens out the low 16.
    const seen = new Map<number, number>();
    for (let a = 0x4e00; ; a++) {
      const v = Math.imul(state ^ a, 0x01000193);
      const other = seen.get(v >>> 16);
      if (other !== undefined) {
        const vOther = Math.imul(state ^ other, 0x01000193);
        const low = (v ^ vOther) & 0xffff;
        const c = 0x4e00; // c ^ low keeps the block free of surrogates: both units stay below 0xd800 or above 0xdfff
        if (((c ^ low) & 0xf800) === 0xd800) {
          seen.set(v >>> 16, a);
          continue;
        }
        choices.push([String.fromCharCode(other, c), String.fromCharCode(a, c ^ low)]);
        state = fnvStep(fnvStep(state, other), c);
        break;
      }
      seen.set(v >>> 16, a);
    }
  }
  const pieces: string[] = [];
  for (let i = 0; i < 2 ** blocks; i++) pieces.push(choices.map((pair, b) => pair[(i >>> b) & 1]).join(''));
  return pieces;
}

/** The old hash state of `s` (for checking that the pieces above really collide). */
export function oldPieceHash(s: string): number {
  let h = FNV_BASIS;
  for (let i = 0; i < s.length; i++) h = fnvStep(h, s.charCodeAt(i));
  return h;
}

/** Counts calls of String.prototype.charCodeAt while `fn` runs: the tokenizer reads text through it alone. */
export function countCharReads<T>(fn: () => T): { result: T; reads: number } {
  const original = String.prototype.charCodeAt;
  let reads = 0;
  String.prototype.charCodeAt = function (this: string, index: number): number {
    reads++;
    return original.call(this, index);
  };
  try {
    return { result: fn(), reads };
  } finally {
    String.prototype.charCodeAt = original;
  }
}

export interface ReferenceConfig extends VocabTable {
  unkId: number;
  addSpacePrefix?: boolean;
}

const MERGEABLE = new Set<number>([TokenType.NORMAL, TokenType.USER_DEFINED, TokenType.UNUSED]);

/**
 * The tokenizer's documented algorithm (see the class comment of lib/tokenizer/tokenizer.ts), written plainly:
 * longest match tried at every position, BPE by rescanning all pairs after every merge. Quadratic, for short texts.
 * BOS is never added.
 */
export function referenceEncode(vocab: ReferenceConfig, text: string, parseSpecial: boolean): number[] {
  const types = Int32Array.from(vocab.types, (t, id) => (PALIGEMMA_PIECE.test(vocab.tokens[id]!) ? TokenType.USER_DEFINED : t));
  // Piece → id: the first id wins unless a later one is mergeable and the first is not.
  const idOf = new Map<string, number>();
  vocab.tokens.forEach((piece, id) => {
    const current = idOf.get(piece);
    if (current === undefined || (MERGEABLE.has(types[id]!) && !MERGEABLE.has(types[current]!))) idOf.set(piece, id);
  });
  const mergeable = (s: string): number => {
    const id = idOf.get(s);
    return id !== undefined && MERGEABLE.has(types[id]!) ? id : -1;
  };
  // Pieces matched whole from text: the first id of each text among user-defined, control and unknown pieces.
  const whole = new Map<string, number>();
  vocab.tokens.forEach((piece, id) => {
    const t = types[id];
    if (piece !== '' && (t === TokenType.USER_DEFINED || t === TokenType.CONTROL || t === TokenType.UNKNOWN) && !whole.has(piece)) whole.set(piece, id);
  });
  const byteIds = new Map<number, number>(); // the first piece named <0xNN> of type BYTE, per byte value
  vocab.tokens.forEach((p, id) => {
    const b = types[id] === TokenType.BYTE ? parseInt(p.slice(3, 5), 16) : NaN;
    if (!byteIds.has(b)) byteIds.set(b, id);
  });
  const byteId = (b: number): number => {
    const id = byteIds.get(b) ?? vocab.unkId;
    if (id < 0) throw new TokenizerError('BAD_VOCAB', 'no byte piece and no <unk>');
    return id;
  };
  const hasBytes = types.some((t) => t === TokenType.BYTE);

  let norm = text.toWellFormed().replaceAll(' ', '\u2581');
  if (vocab.addSpacePrefix) norm = '\u2581' + norm;
  const out: number[] = [];

  const pushBytes = (ch: string): void => {
    for (const b of new TextEncoder().encode(ch)) out.push(byteId(b));
  };
  const bpe = (stretch: string): void => {
    let symbols = Array.from(stretch);
    const split = new Map<string, number>(); // UNUSED piece → length of its left part, last considered wins
    const consider = (i: number): void => {
      if (i < 0 || i + 1 >= symbols.length) return;
      const id = mergeable(symbols[i]! + symbols[i + 1]!);
      if (id >= 0 && types[id] === TokenType.UNUSED) split.set(symbols[i]! + symbols[i + 1]!, symbols[i]!.length);
    };
    for (let i = 0; i + 1 < symbols.length; i++) consider(i);
    for (;;) {
      let best = -1;
      let bestScore = -Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const id = mergeable(symbols[i]! + symbols[i + 1]!);
        if (id >= 0 && (best < 0 || vocab.scores[id]! > bestScore)) {
          best = i;
          bestScore = vocab.scores[id]!;
        }
      }
      if (best < 0) break;
      symbols = [...symbols.slice(0, best), symbols[best]! + symbols[best + 1]!, ...symbols.slice(best + 2)];
      consider(best - 1);
      consider(best);
    }
    const resegment = (piece: string): void => {
      const id = mergeable(piece);
      if (id < 0) return pushBytes(String.fromCodePoint(piece.codePointAt(0)!));
      const at = types[id] === TokenType.UNUSED ? split.get(piece) : undefined;
      if (at === undefined) out.push(id);
      else {
        resegment(piece.slice(0, at));
        resegment(piece.slice(at));
      }
    };
    let lastWasUnk = false;
    for (const s of symbols) {
      if (mergeable(s) >= 0) {
        resegment(s);
        lastWasUnk = false;
      } else if (hasBytes) pushBytes(s);
      else if (!lastWasUnk) {
        if (vocab.unkId < 0) throw new TokenizerError('BAD_VOCAB', 'no byte pieces and no <unk>');
        out.push(vocab.unkId);
        lastWasUnk = true;
      }
    }
  };
  // BPE runs per ▁-word when no mergeable piece has ▁ after its first character (the result is the same).
  const independent = vocab.tokens.every((p, id) => !(types[id] === TokenType.NORMAL || types[id] === TokenType.UNUSED) || p.indexOf('\u2581', 1) < 0);
  const stretchBpe = (stretch: string): void => {
    if (!independent) return bpe(stretch);
    for (const word of stretch.split(/(?=\u2581)/u)) if (word) bpe(word);
  };

  let stretchStart = 0;
  for (let i = 0; i < norm.length; ) {
    let len = 0;
    let id = -1;
    for (const [piece, pid] of whole) {
      if (piece.length > len && norm.startsWith(piece, i) && (parseSpecial || types[pid] === TokenType.USER_DEFINED)) {
        len = piece.length;
        id = pid;
      }
    }
    if (len === 0) {
      i++;
      continue;
    }
    stretchBpe(norm.slice(stretchStart, i));
    out.push(id);
    i += len;
    stretchStart = i;
  }
  stretchBpe(norm.slice(stretchStart));
  return out;
}
