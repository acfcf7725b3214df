/**
 * SentencePiece-style BPE tokenizer, as Gemma and PaliGemma use it, built from GGUF `tokenizer.ggml.*` keys or
 * from a vocabulary table.
 */
import type { GGUFFile, GGUFValue } from '../gguf/types.js';
import { PALIGEMMA_PIECE, TokenType, TokenizerError, type VocabTable } from './vocab-types.js';
import { concat, reduce } from './hash.js';
import { SymbolPairHeap } from './heap.js';
import { PieceMatcher } from './piece-matcher.js';
import { PieceTable } from './piece-table.js';

/** Everything a tokenizer is built from: the vocabulary plus special ids and flags. */
export interface TokenizerConfig extends VocabTable {
  /** Beginning-of-sequence id, or -1 for none. Default: the id of `<bos>` if present, else -1. */
  bosId?: number;
  /** End-of-sequence id, or -1. Default: the id of `<eos>` if present, else -1. */
  eosId?: number;
  /** Unknown-piece id, or -1. Default: the first UNKNOWN-typed piece, else -1. */
  unkId?: number;
  /** Padding id, or -1. Default: the id of `<pad>` if present, else -1. */
  padId?: number;
  /** Whether `encode` prepends BOS when the call does not say. Default true. */
  addBos?: boolean;
  /** Prepend `▁` to the text before encoding (SentencePiece's dummy prefix) and drop it on decode. Default false. */
  addSpacePrefix?: boolean;
}

/** Options of `Tokenizer.encode`. */
export interface EncodeOptions {
  /** Prepend the BOS id. Default: the tokenizer's `addBos` (from the file's `add_bos_token`). */
  addBos?: boolean;
  /** Match control pieces (`<bos>`, `<eos>`, `<pad>`…) and `<unk>` in the text as single tokens. Default false. */
  parseSpecial?: boolean;
  /**
   * Most ids the result may have, BOS included (default: no limit). A text that needs more fails with a
   * TokenizerError TOO_MANY_TOKENS: at once when its length alone proves it (no piece is longer than
   * `longestPiece` code units, so a text of n units needs at least n / longestPiece tokens), else as soon as the
   * ids produced pass the limit. A model passes what is left of its context, so a huge prompt costs nothing.
   */
  maxTokens?: number;
}

/** Options of `Tokenizer.decode` and `createStreamDecoder`. */
export interface DecodeOptions {
  /** Emit the text of control and unknown pieces (`<bos>`, `<eos>`, `<unk>`…). Default false: they are omitted. */
  specials?: boolean;
}

/** Incremental decoder for generated ids: never returns half of a character spelled by several byte tokens. */
export interface StreamDecoder {
  /** Add one id; returns the text that became complete (possibly empty). */
  push(id: number): string;
  /** End of stream: returns what is still held back (an incomplete byte sequence decodes to U+FFFD). */
  flush(): string;
}

const SPACE = 0x20;
/** Longest piece accepted, in UTF-16 code units. Real vocabularies stay under 100 (Gemma: 31). */
export const MAX_PIECE_LENGTH = 1 << 16;
/**
 * Most code units of all pieces matched whole from text (user-defined, control, unknown) together: each is a node
 * of the matcher's automaton. Gemma's 1398 user-defined pieces have 13,063.
 */
export const MAX_MATCHED_UNITS = 1 << 20;
/** Word cache bounds: entries kept (then the cache starts over), and longest word cached (UTF-16 units). */
const WORD_CACHE_SIZE = 32768;
const MAX_CACHED_WORD = 64;
/** Scratch arrays for texts up to this many code units are kept between calls; longer texts get their own. */
const MAX_KEPT_SCRATCH = 1 << 20;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');
/** Per token type: 1 if SentencePiece's piece table holds it (BPE may produce it), 0 if reserved. */
const MERGEABLE = Uint8Array.of(0, 1, 0, 0, 1, 1, 0);
const SPACE_MARK = '\u2581'; // ▁, SentencePiece's escaped space

/**
 * SentencePiece BPE with Gemma's settings. `encode` works like this:
 *
 * 1. Spaces become `▁`; nothing else is normalized (no whitespace folding). A `▁` is prepended only when the
 *    tokenizer's `addSpacePrefix` is on — never for a Gemma-family GGUF without `tokenizer.ggml.add_space_prefix`.
 * 2. Scanning left to right, the longest user-defined piece (type 4) starting at each position is taken whole, even
 *    inside a word; it never merges with its neighbours. `<locNNNN>`, `<segNNN>` and `<image>` count as
 *    user-defined whatever type the file gives them. With `parseSpecial`, control and unknown pieces take part in
 *    this matching too; otherwise their text is ordinary text.
 * 3. Each stretch between matched pieces is split into characters, and the adjacent pair whose concatenation is a
 *    piece with the highest score merges, repeatedly (ties: leftmost). There is no pre-split on spaces: `▁` is a
 *    character like any other. (When no piece has `▁` after its first character, as in Gemma, merges cannot cross
 *    the start of a `▁`, so the implementation runs BPE per `▁`-word and caches words; the result is the same.)
 *    A merge that yields an UNUSED piece is undone in the output (SentencePiece's resegmentation). Characters left
 *    over that are not pieces are spelled as `<0xNN>` byte pieces (or one `<unk>` per run if the vocabulary has no
 *    byte pieces).
 *
 * Tag-like text in a file without type-4 pieces (some converters type `<start_of_turn>`, `<table>`, `<unused0>`,
 * whitespace runs… as normal): such text gets no special treatment; it goes through BPE like any other text, and
 * comes out as the single piece only if the merges happen to build it, so ids can differ from the original
 * SentencePiece model. Only the PaliGemma pieces are always matched by name.
 *
 * A lone UTF-16 surrogate in the text is encoded as U+FFFD (what UTF-8 encoding of the string gives).
 * `encode` returns a plain `number[]`.
 *
 * Hostile vocabularies and prompts: building is linear in the vocabulary and encoding linear in the text plus the
 * length of the pieces merged, whatever the pieces (hashes are seeded per tokenizer; whole pieces are found by an
 * Aho–Corasick automaton). A piece may have at most MAX_PIECE_LENGTH code units, and the pieces matched whole at most
 * MAX_MATCHED_UNITS together (else LIMIT_EXCEEDED). `maxTokens` bounds the work of one call before it starts.
 */
export class Tokenizer {
  /** Number of pieces. */
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly padId: number;
  readonly addBos: boolean;
  readonly addSpacePrefix: boolean;

  private readonly tokens: string[];
  private readonly scores: Float32Array;
  /** Effective types: the file's, with the PaliGemma pieces forced to USER_DEFINED. */
  private readonly types: Int32Array;
  /** Piece text → id (first id wins, except that a piece BPE may produce beats one it may not). */
  private readonly ids: PieceTable;
  /** `<0xNN>` id per byte value, -1 if absent. */
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly hasByteFallback: boolean;
  /**
   * True when no piece BPE can build has `▁` after its first character: then no merge crosses the start of a
   * `▁`, and each `▁`-initial word can go through BPE alone (same result, much smaller heaps).
   */
  private readonly wordsAreIndependent: boolean;
  /** Ids of recently seen words (when words are independent): real text repeats most of its words. */
  private readonly wordCache = new Map<string, number[]>();
  private readonly matcher: PieceMatcher;
  /** Length of the longest piece (any type), in code units: no token covers more of the text. */
  readonly longestPiece: number;
  /** base^n mod the hash prime for n = 0..longestPiece: what composing a hash with a part of n units needs. */
  private readonly powers: Int32Array;

  // BPE scratch space, reused between calls (encode is synchronous). Per symbol: its range of the text, its
  // neighbours and the hash of its text (so merges compose hashes in O(1), see hash.ts).
  private start = new Int32Array(256);
  private end = new Int32Array(256);
  private prev = new Int32Array(256);
  private next = new Int32Array(256);
  private hash = new Int32Array(256);
  /** Per position of the text being encoded: length and id of the longest piece matched whole there (PieceMatcher.scan). */
  private matchLengths = new Int32Array(1024);
  private matchIds = new Int32Array(1024);
  private readonly heap = new SymbolPairHeap();
  /**
   * Per UNUSED piece queued as a merge in the current BPE run: the length of the left part it was merged from
   * (0: none), for SentencePiece's resegmentation; `unusedQueued` lists the ids to clear after the run.
   */
  private unusedSplit?: Int32Array;
  private readonly unusedQueued: number[] = [];

  /** Build from a vocabulary table and special ids. Throws `TokenizerError` on an inconsistent table. */
  constructor(config: TokenizerConfig) {
    const { tokens, scores, types } = config;
    if (!Array.isArray(tokens) || tokens.length === 0) throw new TokenizerError('BAD_VOCAB', 'tokens must be a non-empty array of strings');
    if (!(scores instanceof Float32Array) || scores.length !== tokens.length) {
      throw new TokenizerError('BAD_VOCAB', `scores must be a Float32Array of ${tokens.length} entries (one per token)`);
    }
    if (!(types instanceof Int32Array) || types.length !== tokens.length) {
      throw new TokenizerError('BAD_VOCAB', `types must be an Int32Array of ${tokens.length} entries (one per token)`);
    }
    const n = tokens.length;
    this.vocabSize = n;
    this.scores = scores;
    // An own packed copy: the caller's array may be sparse (dictionary mode, slow to index).
    const own: string[] = (this.tokens = new Array<string>(n));
    const effective = (this.types = new Int32Array(n));

    let firstUnknown = -1;
    let wordsAreIndependent = true;
    let longestPiece = 0;
    let matchedUnits = 0;
    const matched: string[] = [];
    const matchedIds: number[] = [];
    for (let id = 0; id < n; id++) {
      const piece = tokens[id];
      if (typeof piece !== 'string') throw new TokenizerError('BAD_VOCAB', `token ${id} is not a string`);
      if (piece.length > longestPiece) {
        longestPiece = piece.length;
        if (longestPiece > MAX_PIECE_LENGTH) {
          throw new TokenizerError(
            'LIMIT_EXCEEDED',
            `token ${id} (${describePiece(piece)}) is ${piece.length} characters long; a piece may have at most ${MAX_PIECE_LENGTH} (UTF-16 code units)`,
          );
        }
      }
      own[id] = piece;
      let type = types[id];
      if (type < TokenType.NORMAL || type > TokenType.BYTE) {
        throw new TokenizerError('BAD_VOCAB', `token ${id} (${describePiece(piece)}) has unknown type ${type}`);
      }
      if (piece.charCodeAt(0) === 0x3c /* < */ && PALIGEMMA_PIECE.test(piece)) type = TokenType.USER_DEFINED;
      effective[id] = type;

      switch (type) {
        case TokenType.NORMAL:
        case TokenType.UNUSED:
          if (wordsAreIndependent && piece.indexOf(SPACE_MARK, 1) >= 0) wordsAreIndependent = false;
          break;
        case TokenType.UNKNOWN:
        case TokenType.USER_DEFINED:
        case TokenType.CONTROL:
          if (type === TokenType.UNKNOWN && firstUnknown < 0) firstUnknown = id;
          matchedUnits += piece.length;
          if (matchedUnits > MAX_MATCHED_UNITS) {
            throw new TokenizerError(
              'LIMIT_EXCEEDED',
              `token ${id} takes the user-defined, control and unknown pieces (matched whole from text) past ${MAX_MATCHED_UNITS} characters in all`,
            );
          }
          matched.push(piece);
          matchedIds.push(id);
          break;
        case TokenType.BYTE: {
          const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
          if (!m) throw new TokenizerError('BAD_VOCAB', `byte token ${id} is named ${JSON.stringify(piece)}, expected <0xNN>`);
          const b = parseInt(m[1], 16);
          if (this.byteIds[b] < 0) this.byteIds[b] = id;
          break;
        }
      }
    }
    this.hasByteFallback = this.byteIds.some((id) => id >= 0);
    this.wordsAreIndependent = wordsAreIndependent;
    this.longestPiece = longestPiece;
    this.matcher = new PieceMatcher(matched, matchedIds, effective, TokenType.USER_DEFINED);
    this.ids = new PieceTable(own, (id, current) => MERGEABLE[effective[id]] === 1 && MERGEABLE[effective[current]] === 0);
    this.powers = new Int32Array(Math.max(2, longestPiece) + 1);
    this.powers[0] = 1;
    for (let i = 1; i < this.powers.length; i++) this.powers[i] = reduce(this.powers[i - 1] * this.ids.base);
    const idOf = (piece: string) => {
      const id = this.ids.find(piece, 0, piece.length);
      return id >= 0 ? id : undefined;
    };

    const special = (name: string, given: number | undefined, fallback: number): number => {
      const id = given ?? fallback;
      if (!Number.isInteger(id) || id < -1 || id >= n) {
        throw new TokenizerError('BAD_ID', `${name} ${id} is outside the vocabulary (0..${n - 1}, or -1 for none)`);
      }
      return id;
    };
    this.bosId = special('bosId', config.bosId, idOf('<bos>') ?? -1);
    this.eosId = special('eosId', config.eosId, idOf('<eos>') ?? -1);
    this.unkId = special('unkId', config.unkId, firstUnknown);
    this.padId = special('padId', config.padId, idOf('<pad>') ?? -1);
    this.addBos = config.addBos ?? true;
    this.addSpacePrefix = config.addSpacePrefix ?? false;
  }

  /**
   * Build from a GGUF header: `tokenizer.ggml.model` (must be `llama`, i.e. SentencePiece), `tokens`, `scores`,
   * `token_type`, and optionally `bos_token_id`, `eos_token_id`, `unknown_token_id`, `padding_token_id`,
   * `add_bos_token` (default true) and `add_space_prefix`. Without `add_space_prefix`, a Gemma-family file
   * (`general.architecture` gemma…/paligemma…) gets no space prefix — unlike llama.cpp's default — and any other
   * file gets one; the key, when present, always wins.
   */
  static fromGGUF(gguf: GGUFFile): Tokenizer {
    const meta = gguf.metadata;
    const where = gguf.path ? `${gguf.path}: ` : '';
    const model = meta.get('tokenizer.ggml.model');
    if (model === undefined) throw new TokenizerError('MISSING_KEY', `${where}no tokenizer.ggml.model key`);
    if (model.type !== 'string' || model.value !== 'llama') {
      throw new TokenizerError(
        'UNSUPPORTED_MODEL',
        `${where}tokenizer.ggml.model is ${model.type === 'string' ? JSON.stringify(model.value) : `a ${model.type}`}; only SentencePiece ("llama") is supported`,
      );
    }
    const tokens = requireArray(meta, 'tokenizer.ggml.tokens', where);
    if (tokens.itemType !== 'string') throw badType('tokenizer.ggml.tokens', 'an array of strings', where);
    const scores = requireArray(meta, 'tokenizer.ggml.scores', where);
    if (scores.itemType !== 'f32' && scores.itemType !== 'f64') throw badType('tokenizer.ggml.scores', 'an array of floats', where);
    const types = requireArray(meta, 'tokenizer.ggml.token_type', where);
    if (!isIntArray(types.value)) throw badType('tokenizer.ggml.token_type', 'an array of integers', where);

    const arch = meta.get('general.architecture');
    const gemmaFamily = arch?.type === 'string' && /^(?:pali)?gemma/i.test(arch.value);
    const n = tokens.value.length;
    if (scores.value.length !== n || types.value.length !== n) {
      throw new TokenizerError(
        'BAD_VOCAB',
        `${where}tokenizer.ggml.tokens has ${n} entries but scores has ${scores.value.length} and token_type ${types.value.length}`,
      );
    }
    return withPlace(where, () => new Tokenizer({
      tokens: tokens.value,
      scores: scores.value instanceof Float32Array ? scores.value : Float32Array.from(scores.value as Float64Array),
      types: types.value instanceof Int32Array ? types.value : Int32Array.from(types.value as ArrayLike<number>),
      bosId: optionalId(meta, 'tokenizer.ggml.bos_token_id', where),
      eosId: optionalId(meta, 'tokenizer.ggml.eos_token_id', where),
      unkId: optionalId(meta, 'tokenizer.ggml.unknown_token_id', where),
      padId: optionalId(meta, 'tokenizer.ggml.padding_token_id', where),
      addBos: optionalBool(meta, 'tokenizer.ggml.add_bos_token', where) ?? true,
      addSpacePrefix: optionalBool(meta, 'tokenizer.ggml.add_space_prefix', where) ?? !gemmaFamily,
    }));
  }

  /** Text → ids (see the class comment for the rules). Linear in the text for any vocabulary. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TokenizerError('BAD_INPUT', `encode expects a string, got ${typeof text}`);
    const maxTokens = options.maxTokens ?? Infinity;
    if (maxTokens !== Infinity && !(Number.isSafeInteger(maxTokens) && maxTokens >= 0)) {
      throw new TokenizerError('BAD_INPUT', `maxTokens must be an integer >= 0, got ${maxTokens}`);
    }
    const parseSpecial = options.parseSpecial ?? false;
    const out: number[] = [];
    if ((options.addBos ?? this.addBos) && this.bosId >= 0) out.push(this.bosId);
    // Normalizing keeps the length (a space becomes ▁, a lone surrogate U+FFFD), so the bound holds before it.
    const units = text.length + (this.addSpacePrefix ? 1 : 0);
    const fewest = out.length + this.fewestTokens(units);
    if (fewest > maxTokens) {
      throw tooManyTokens(maxTokens, `a text of ${units} UTF-16 code units needs at least ${fewest} (no piece is longer than ${this.longestPiece})`);
    }

    if (LONE_SURROGATE.test(text)) text = text.replace(LONE_SURROGATES, '\ufffd');
    let norm = text.includes(' ') ? text.replaceAll(' ', SPACE_MARK) : text;
    if (this.addSpacePrefix) norm = SPACE_MARK + norm;

    const n = norm.length;
    if (this.matchLengths.length < n && n <= MAX_KEPT_SCRATCH) {
      this.matchLengths = new Int32Array(Math.max(n, 2 * this.matchLengths.length));
      this.matchIds = new Int32Array(this.matchLengths.length);
    }
    const lengths = n <= this.matchLengths.length ? this.matchLengths : new Int32Array(n);
    const ids = n <= this.matchIds.length ? this.matchIds : new Int32Array(n);
    let stretch = 0;
    if (this.matcher.scan(norm, parseSpecial, lengths, ids)) {
      for (let i = 0; i < n; ) {
        if (lengths[i] === 0) {
          i++;
          continue;
        }
        this.bpe(norm, stretch, i, out, maxTokens);
        out.push(ids[i]);
        i += lengths[i];
        stretch = i;
        if (out.length > maxTokens) throw tooManyTokens(maxTokens, `stopped at character ${i} of ${n}`);
      }
    }
    this.bpe(norm, stretch, n, out, maxTokens);
    return out;
  }

  /** Fewest tokens a text of `units` code units can encode to (no token covers more than the longest piece). */
  private fewestTokens(units: number): number {
    if (units === 0) return 0;
    // Without byte pieces a whole run of unknown characters becomes one <unk>.
    return this.hasByteFallback ? Math.ceil(units / this.longestPiece) : 1;
  }

  /** Ids → text: byte pieces reassembled into UTF-8, `▁` → space, control/unknown pieces omitted unless asked. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const stream = this.createStreamDecoder(options);
    let text = '';
    for (let i = 0; i < ids.length; i++) text += stream.push(ids[i]);
    return text + stream.flush();
  }

  /** A decoder for ids arriving one at a time (generation). Same output as `decode` over the whole sequence. */
  createStreamDecoder(options: DecodeOptions = {}): StreamDecoder {
    const specials = options.specials ?? false;
    const utf8 = new TextDecoder('utf-8');
    const oneByte = new Uint8Array(1);
    let pendingBytes = false;
    let atStart = true;
    return {
      push: (id: number): string => {
        this.checkId(id);
        const type = this.types[id];
        if (type === TokenType.BYTE) {
          oneByte[0] = parseInt(this.tokens[id].slice(3, 5), 16);
          pendingBytes = true;
          const text = utf8.decode(oneByte, { stream: true });
          if (text) atStart = false;
          return text;
        }
        // A non-byte piece ends any byte sequence; an unfinished one becomes U+FFFD.
        let text = pendingBytes ? utf8.decode() : '';
        pendingBytes = false;
        if ((type === TokenType.CONTROL || type === TokenType.UNKNOWN) && !specials) return text;
        let piece = this.tokens[id].replaceAll(SPACE_MARK, ' ');
        if (atStart && !text && this.addSpacePrefix && piece.charCodeAt(0) === SPACE) piece = piece.slice(1);
        atStart = false;
        return text + piece;
      },
      flush: (): string => {
        const text = pendingBytes ? utf8.decode() : '';
        pendingBytes = false;
        return text;
      },
    };
  }

  /** The vocabulary piece of an id as stored (`▁the`, `<0x0A>`, `<bos>`…). */
  tokenToPiece(id: number): string {
    this.checkId(id);
    return this.tokens[id];
  }

  /** The id of a piece spelled exactly as in the vocabulary (`<loc0123>`, `▁the`), or undefined. */
  tokenId(piece: string): number | undefined {
    const id = this.ids.find(piece, 0, piece.length);
    return id >= 0 ? id : undefined;
  }

  /** The effective `TokenType` of an id (PaliGemma pieces report USER_DEFINED whatever the file says). */
  tokenType(id: number): number {
    this.checkId(id);
    return this.types[id];
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new TokenizerError('BAD_ID', `token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
  }

  /** SentencePiece BPE over the stretch `norm[from, to)`, appending ids to `out` (at most `maxTokens` in all). */
  private bpe(norm: string, from: number, to: number, out: number[], maxTokens: number): void {
    if (!this.wordsAreIndependent) this.bpeRun(norm, from, to, out);
    else {
      while (from < to) {
        let end = norm.indexOf(SPACE_MARK, from + 1);
        if (end < 0 || end > to) end = to;
        if (end - from > MAX_CACHED_WORD) this.bpeRun(norm, from, end, out);
        else {
          const word = norm.slice(from, end);
          let ids = this.wordCache.get(word);
          if (ids === undefined) {
            const first = out.length;
            this.bpeRun(norm, from, end, out);
            ids = out.slice(first);
            if (this.wordCache.size >= WORD_CACHE_SIZE) this.wordCache.clear();
            this.wordCache.set(word, ids);
          } else {
            for (let i = 0; i < ids.length; i++) out.push(ids[i]);
          }
        }
        from = end;
        if (out.length > maxTokens) break;
      }
    }
    if (out.length > maxTokens) throw tooManyTokens(maxTokens, `stopped at character ${from} of ${norm.length}`);
  }

  /**
   * SentencePiece BPE proper over `norm[from, to)`: merge the best-scoring adjacent pair until none is a piece.
   * A candidate pair is looked up by the hash composed from its two symbols' hashes, so a lookup costs O(1) plus,
   * only when a piece has that hash, comparing the piece with the text.
   */
  private bpeRun(norm: string, from: number, to: number, out: number[]): void {
    if (from >= to) return;
    this.reserve(to - from);
    const { start, end, prev, next, hash, powers } = this;
    const base = this.ids.base;

    // One symbol per code point (a surrogate pair stays together).
    let count = 0;
    for (let p = from; p < to; count++) {
      const c = norm.charCodeAt(p);
      start[count] = p;
      if (c >= 0xd800 && c < 0xdc00 && p + 1 < to && (norm.charCodeAt(p + 1) & 0xfc00) === 0xdc00) {
        hash[count] = reduce(c * base + norm.charCodeAt(p + 1));
        p += 2;
      } else {
        hash[count] = c;
        p += 1;
      }
      end[count] = p;
      prev[count] = count - 1;
      next[count] = count + 1;
    }
    next[count - 1] = -1;

    const heap = this.heap;
    heap.clear();
    // Splits recorded by the previous run (cleared here, so that a run that threw leaves nothing behind).
    for (const id of this.unusedQueued) this.unusedSplit![id] = 0;
    this.unusedQueued.length = 0;
    const consider = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const length = end[right] - start[left];
      if (length > this.longestPiece) return;
      const id = this.mergeable(concat(hash[left], hash[right], powers[end[right] - start[right]]), norm, start[left], end[right]);
      if (id < 0) return;
      heap.push(this.scores[id], left, right, length);
      if (this.types[id] === TokenType.UNUSED) {
        (this.unusedSplit ??= new Int32Array(this.vocabSize))[id] = end[left] - start[left];
        this.unusedQueued.push(id);
      }
    };
    for (let i = 0; i + 1 < count; i++) consider(i, i + 1);

    while (heap.size > 0) {
      const left = heap.topLeft, right = heap.topRight, len = heap.topLength;
      heap.pop();
      // Stale entry: one side was merged away or grew since the pair was queued.
      if (next[left] !== right || end[right] - start[left] !== len || end[left] === start[left] || end[right] === start[right]) {
        continue;
      }
      hash[left] = concat(hash[left], hash[right], powers[end[right] - start[right]]);
      end[left] = end[right];
      end[right] = start[right]; // empty = merged away
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      consider(prev[left], left);
      consider(left, next[left]);
    }

    let lastWasUnk = false;
    for (let i = 0; i >= 0; i = next[i]) {
      const id = this.mergeable(hash[i], norm, start[i], end[i]);
      if (id >= 0) {
        if (this.unusedSplit && this.unusedSplit[id] > 0) this.resegment(norm.slice(start[i], end[i]), out);
        else out.push(id);
        lastWasUnk = false;
      } else if (this.hasByteFallback) {
        this.pushBytes(norm.codePointAt(start[i])!, out);
      } else if (!lastWasUnk) {
        // SentencePiece without byte fallback merges a run of unknown characters into one <unk>.
        if (this.unkId < 0) {
          throw new TokenizerError('BAD_VOCAB', `cannot encode ${JSON.stringify(norm.slice(start[i], end[i]))}: no byte pieces and no <unk>`);
        }
        out.push(this.unkId);
        lastWasUnk = true;
      }
    }
  }

  /**
   * Emit an UNUSED piece as the pieces it was merged from, recursively (SentencePiece's resegmentation). The parts
   * are ranges of `piece`, worked through with an explicit stack (a chain of merges can be as deep as the piece).
   */
  private resegment(piece: string, out: number[]): void {
    const stack = [0, piece.length];
    while (stack.length > 0) {
      const end = stack.pop()!, start = stack.pop()!;
      const id = this.mergeable(this.ids.hash(piece, start, end), piece, start, end);
      if (id < 0) {
        this.pushBytes(piece.codePointAt(start)!, out); // a single character outside the vocabulary
        continue;
      }
      const split = this.types[id] === TokenType.UNUSED ? this.unusedSplit![id] : 0;
      if (split === 0) out.push(id);
      else stack.push(start + split, end, start, start + split); // the left part is popped first
    }
  }

  /** Id of `text[start, end)` (hash `h`) if it is a piece BPE may produce (NORMAL, USER_DEFINED, UNUSED), else -1. */
  private mergeable(h: number, text: string, start: number, end: number): number {
    const id = this.ids.findHashed(h, text, start, end);
    return id >= 0 && MERGEABLE[this.types[id]] === 1 ? id : -1;
  }

  /** Byte fallback for one code point: its UTF-8 bytes as `<0xNN>` pieces. */
  private pushBytes(cp: number, out: number[]): void {
    const byteIds = this.byteIds;
    const push = (b: number) => {
      const id = byteIds[b];
      if (id < 0 && this.unkId < 0) throw new TokenizerError('BAD_VOCAB', `cannot encode byte 0x${b.toString(16)}: no byte piece and no <unk>`);
      out.push(id >= 0 ? id : this.unkId);
    };
    if (cp < 0x80) push(cp);
    else if (cp < 0x800) {
      push(0xc0 | (cp >> 6));
      push(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      push(0xe0 | (cp >> 12));
      push(0x80 | ((cp >> 6) & 0x3f));
      push(0x80 | (cp & 0x3f));
    } else {
      push(0xf0 | (cp >> 18));
      push(0x80 | ((cp >> 12) & 0x3f));
      push(0x80 | ((cp >> 6) & 0x3f));
      push(0x80 | (cp & 0x3f));
    }
  }

  private reserve(symbols: number): void {
    if (this.start.length >= symbols) return;
    const size = Math.max(symbols, this.start.length * 2);
    this.start = new Int32Array(size);
    this.end = new Int32Array(size);
    this.prev = new Int32Array(size);
    this.next = new Int32Array(size);
    this.hash = new Int32Array(size);
  }
}

/** Runs `build`, prefixing the message of a TokenizerError with `where` (the file it came from). */
function withPlace<T>(where: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (err instanceof TokenizerError && where) throw new TokenizerError(err.code, where + err.message);
    throw err;
  }
}

/** A piece for messages: quoted, cut after 40 characters (a piece may be megabytes long). */
function describePiece(piece: string): string {
  return piece.length <= 40 ? JSON.stringify(piece) : `${JSON.stringify(piece.slice(0, 40))}…`;
}

function tooManyTokens(maxTokens: number, detail: string): TokenizerError {
  return new TokenizerError('TOO_MANY_TOKENS', `the text needs more than ${maxTokens} tokens (maxTokens): ${detail}`);
}

function requireArray(meta: Map<string, GGUFValue>, key: string, where: string) {
  const v = meta.get(key);
  if (v === undefined) throw new TokenizerError('MISSING_KEY', `${where}no ${key} key`);
  if (v.type !== 'array') throw badType(key, 'an array', where);
  return v;
}

function optionalId(meta: Map<string, GGUFValue>, key: string, where: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (v.type === 'u64' || v.type === 'i64') return Number(v.value);
  if (typeof v.value !== 'number' || v.type === 'f32' || v.type === 'f64') throw badType(key, 'an integer', where);
  return v.value;
}

function optionalBool(meta: Map<string, GGUFValue>, key: string, where: string): boolean | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'bool') throw badType(key, 'a bool', where);
  return v.value;
}

function isIntArray(v: unknown): boolean {
  return (
    v instanceof Int32Array || v instanceof Uint32Array || v instanceof Int16Array || v instanceof Uint16Array ||
    v instanceof Int8Array || v instanceof Uint8Array
  );
}

function badType(key: string, expected: string, where: string): TokenizerError {
  return new TokenizerError('BAD_VOCAB', `${where}${key} is not ${expected}`);
}
