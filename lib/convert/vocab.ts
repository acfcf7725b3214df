/**
 * Hugging Face `tokenizer.json` (model type BPE, as Gemma ships it) → SentencePiece-style vocabulary table,
 * the form GGUF stores in `tokenizer.ggml.tokens / scores / token_type`.
 */
import {
  PALIGEMMA_PIECE,
  TokenType,
  TokenizerError,
  paligemmaPieces,
  type VocabTable,
} from '../tokenizer/vocab-types.js';
import { PieceTable } from '../tokenizer/piece-table.js';

/** Gemma's user-defined id ranges (inclusive): `<mask>`…`<unused98>`, turn markers, `\n`/`▁`/tab runs, HTML tags. */
export const GEMMA_USER_DEFINED_RANGES: ReadonlyArray<readonly [number, number]> = [
  [4, 216],
  [255968, 255999],
];

/** Options of `vocabFromTokenizerJson`. */
export interface TokenizerJsonVocabOptions {
  /**
   * Append `<loc0000>`..`<loc1023>`, `<seg000>`..`<seg127>`, `<image>` after the last piece, unless the json
   * already has them (PaliGemma's own tokenizer.json lists them as added tokens; then their ids are kept).
   */
  paligemma?: boolean;
  /**
   * Pad the table to this many tokens (the embedding's row count). Padding pieces are named `[PAD{id}]`, typed
   * UNUSED (never produced from text: nothing merges into them) and scored 0. Smaller than the table is an error.
   */
  padTo?: number;
  /** Inclusive id ranges typed USER_DEFINED. Defaults to Gemma's (`GEMMA_USER_DEFINED_RANGES`). */
  userDefinedRanges?: ReadonlyArray<readonly [number, number]>;
}

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

/**
 * Build the SentencePiece vocabulary (pieces, scores, types) from a parsed Hugging Face `tokenizer.json` of a
 * Gemma-family model.
 *
 * - Pieces: `model.vocab` plus `added_tokens`, by id (no holes allowed). A byte piece that the json spells as
 *   the raw character (Gemma's id 226 is `"\t"`) is renamed to `<0xNN>` when it sits where the byte run
 *   `<0x00>`..`<0xFF>` puts it.
 * - Types: `<0xNN>` → BYTE; PaliGemma pieces (`<locNNNN>`, `<segNNN>`, `<image>`) → USER_DEFINED; the model's
 *   `unk_token` → UNKNOWN; other special added tokens → CONTROL, non-special added tokens → USER_DEFINED; ids in
 *   `userDefinedRanges` → USER_DEFINED; everything else NORMAL.
 * - Scores: tokenizer.json has none, only the merge list, ordered by priority. A NORMAL piece produced by merge
 *   rank r (its first occurrence) gets score -r, so SentencePiece's "highest-scoring merge first" reproduces
 *   the list's order exactly. NORMAL pieces no merge produces (single characters) score below every merged
 *   piece, -(merges + id); all other types score 0, as in SentencePiece models.
 *
 * Throws `TokenizerError` (`BAD_VOCAB` / `MISSING_KEY`) naming what is wrong.
 */
export function vocabFromTokenizerJson(json: unknown, options: TokenizerJsonVocabOptions = {}): VocabTable {
  const model = field(json, 'model', 'tokenizer.json');
  if (!isObject(model)) throw new TokenizerError('BAD_VOCAB', 'tokenizer.json: `model` is not an object');
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new TokenizerError('BAD_VOCAB', `tokenizer.json: model.type is ${JSON.stringify(model.type)}, expected "BPE"`);
  }
  const vocab = field(model, 'vocab', 'tokenizer.json model');
  const merges = field(model, 'merges', 'tokenizer.json model');
  if (!isObject(vocab)) throw new TokenizerError('BAD_VOCAB', 'tokenizer.json: model.vocab is not an object');
  if (!Array.isArray(merges)) throw new TokenizerError('BAD_VOCAB', 'tokenizer.json: model.merges is not an array');
  const added = parseAddedTokens(isObject(json) ? json.added_tokens : undefined);

  // Pieces by id. Ids must be dense, so none can reach the number of entries (this also bounds the allocation).
  const maxCount = Object.keys(vocab).length + added.length;
  // Filled with undefined in order first: assigning ids out of order to an empty (or `new Array(n)`, n > 100k)
  // array gives V8 a dictionary-mode array, slow for everything that reads the vocabulary later.
  const tokens: string[] = Array.from({ length: maxCount }, () => undefined as unknown as string);
  let count = 0;
  const place = (id: number, piece: string, where: string) => {
    if (!Number.isSafeInteger(id) || id < 0 || id >= maxCount) {
      throw new TokenizerError('BAD_VOCAB', `tokenizer.json: ${where} id ${id} of ${JSON.stringify(piece)} is not a valid token id`);
    }
    const old = tokens[id];
    if (old !== undefined && old !== piece) {
      throw new TokenizerError('BAD_VOCAB', `tokenizer.json: id ${id} is both ${JSON.stringify(old)} and ${JSON.stringify(piece)}`);
    }
    tokens[id] = piece;
    count = Math.max(count, id + 1);
  };
  for (const piece in vocab) place(vocab[piece] as number, piece, 'model.vocab');
  for (const t of added) place(t.id, t.content, 'added_tokens');
  tokens.length = count;
  for (let id = 0; id < count; id++) {
    if (tokens[id] === undefined) throw new TokenizerError('BAD_VOCAB', `tokenizer.json: no piece has id ${id}`);
  }
  renameRawBytePieces(tokens);
  const idOf = new PieceTable(tokens, (id, first) => {
    throw new TokenizerError('BAD_VOCAB', `tokenizer.json: piece ${JSON.stringify(tokens[id])} has two ids, ${first} and ${id}`);
  });
  const has = (piece: string) => idOf.find(piece, 0, piece.length) >= 0;

  if (options.paligemma) {
    const pieces = paligemmaPieces();
    const present = pieces.filter(has).length;
    if (present === 0) tokens.push(...pieces);
    else if (present !== pieces.length) {
      throw new TokenizerError('BAD_VOCAB', `tokenizer.json has ${present} of the ${pieces.length} PaliGemma pieces; expected all or none`);
    }
  }

  const baseCount = tokens.length;
  if (options.padTo !== undefined) {
    if (!Number.isSafeInteger(options.padTo) || options.padTo < baseCount) {
      throw new TokenizerError('BAD_VOCAB', `padTo ${options.padTo} is smaller than the vocabulary (${baseCount} pieces)`);
    }
    for (let id = baseCount; id < options.padTo; id++) {
      const piece = `[PAD${id}]`;
      if (has(piece)) throw new TokenizerError('BAD_VOCAB', `tokenizer.json already has the padding piece ${piece}`);
      tokens.push(piece);
    }
  }

  const types = assignTypes(tokens, baseCount, added, model.unk_token, options.userDefinedRanges ?? GEMMA_USER_DEFINED_RANGES);
  const scores = scoresFromMerges(tokens, types, idOf, merges);
  return { tokens, scores, types };
}

function assignTypes(
  tokens: string[],
  baseCount: number,
  added: AddedToken[],
  unkToken: unknown,
  userDefinedRanges: ReadonlyArray<readonly [number, number]>,
): Int32Array {
  const types = new Int32Array(tokens.length).fill(TokenType.NORMAL);
  for (const [lo, hi] of userDefinedRanges) {
    for (let id = Math.max(0, lo); id <= Math.min(hi, baseCount - 1); id++) types[id] = TokenType.USER_DEFINED;
  }
  for (const t of added) types[t.id] = t.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
  for (let id = 0; id < tokens.length; id++) {
    const piece = tokens[id];
    if (id >= baseCount) types[id] = TokenType.UNUSED;
    else if (BYTE_PIECE.test(piece)) types[id] = TokenType.BYTE;
    else if (PALIGEMMA_PIECE.test(piece)) types[id] = TokenType.USER_DEFINED;
    else if (piece === unkToken) types[id] = TokenType.UNKNOWN;
  }
  return types;
}

function scoresFromMerges(tokens: string[], types: Int32Array, idOf: PieceTable, merges: unknown[]): Float32Array {
  const firstRank = new Int32Array(tokens.length).fill(-1);
  for (let rank = 0; rank < merges.length; rank++) {
    const [left, right] = mergePair(merges[rank], rank);
    const piece = left + right;
    const id = idOf.find(piece, 0, piece.length);
    if (id >= 0 && firstRank[id] < 0) firstRank[id] = rank;
  }
  const scores = new Float32Array(tokens.length);
  for (let id = 0; id < tokens.length; id++) {
    if (types[id] !== TokenType.NORMAL) continue; // 0, as SentencePiece scores non-normal pieces
    scores[id] = firstRank[id] >= 0 ? 0 - firstRank[id] : -(merges.length + id); // 0 - r: no -0
  }
  return scores;
}

/** A merge is `"left right"` (older files) or `["left", "right"]` (newer files). */
function mergePair(merge: unknown, rank: number): [string, string] {
  if (typeof merge === 'string') {
    const space = merge.indexOf(' ');
    if (space > 0 && space === merge.lastIndexOf(' ') && space < merge.length - 1) {
      return [merge.slice(0, space), merge.slice(space + 1)];
    }
  } else if (Array.isArray(merge) && merge.length === 2 && typeof merge[0] === 'string' && typeof merge[1] === 'string') {
    return [merge[0], merge[1]];
  }
  throw new TokenizerError('BAD_VOCAB', `tokenizer.json: model.merges[${rank}] is not a pair of pieces: ${JSON.stringify(merge)}`);
}

const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

/** Rename raw-character byte pieces (`"\t"` at `<0x00>`'s id + 9) to `<0xNN>`. */
function renameRawBytePieces(tokens: string[]): void {
  const first = tokens.indexOf('<0x00>');
  if (first < 0) return;
  for (let b = 0; b < 256 && first + b < tokens.length; b++) {
    const name = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    if (tokens[first + b] === String.fromCharCode(b) && !tokens.includes(name)) tokens[first + b] = name;
  }
}

function parseAddedTokens(value: unknown): AddedToken[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new TokenizerError('BAD_VOCAB', 'tokenizer.json: added_tokens is not an array');
  return value.map((t, i) => {
    if (!isObject(t) || typeof t.id !== 'number' || typeof t.content !== 'string') {
      throw new TokenizerError('BAD_VOCAB', `tokenizer.json: added_tokens[${i}] lacks a numeric id or a string content`);
    }
    return { id: t.id, content: t.content, special: t.special === true };
  });
}

function field(obj: unknown, key: string, where: string): unknown {
  if (!isObject(obj) || obj[key] === undefined) throw new TokenizerError('MISSING_KEY', `${where}: missing \`${key}\``);
  return obj[key];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
