/**
 * The tokenizer against vocabularies and prompts chosen to stall it: pieces crafted to share a hash, a long
 * user-defined piece with near misses in the prompt, huge pieces, huge prompts. Work is asserted by counting
 * (probes of the piece table, reads of the text) rather than by time; the fuzzer at the end checks exactness on
 * random hostile vocabularies against a plain reference implementation (test/helpers/hostile-vocab.ts).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';

import type { GGUFFile, GGUFValue } from '../lib/gguf/index.js';
import { PieceTable } from '../lib/tokenizer/piece-table.js';
import { MAX_MATCHED_UNITS, MAX_PIECE_LENGTH } from '../lib/tokenizer/tokenizer.js';
import { TokenType, Tokenizer, TokenizerError, type VocabTable } from '../lib/tokenizer/index.js';
import { countCharReads, fnvCollidingPieces, oldPieceHash, referenceEncode } from './helpers/hostile-vocab.js';
import { GEMMA_IDS, paligemmaVocab } from './helpers/vocab.js';

/** A vocabulary from [piece, type, score] rows, with the 256 byte pieces appended when `bytes`. */
function vocabOf(rows: [string, number, number?][], bytes = true): VocabTable {
  const all = [...rows];
  if (bytes) for (let b = 0; b < 256; b++) all.push([`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, TokenType.BYTE]);
  return {
    tokens: all.map((r) => r[0]),
    types: Int32Array.from(all, (r) => r[1]),
    scores: Float32Array.from(all, (r) => r[2] ?? 0),
  };
}

function tokenizerError(fn: () => unknown): TokenizerError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TokenizerError) return err;
    throw err;
  }
  throw new Error('expected a TokenizerError');
}

describe('piece table', () => {
  it('builds in linear time from 65536 pieces that all shared one hash in the old table (105 s for 100k before)', () => {
    const pieces = fnvCollidingPieces(16);
    expect(new Set(pieces).size).toBe(65536);
    expect(new Set(pieces.map(oldPieceHash)).size).toBe(1); // the attack is real
    const table = new PieceTable(pieces);
    // A well-spread table at load ≤ 1/2 needs about 1.5 probes per piece; the old one needed n/2.
    expect(table.buildProbes).toBeLessThan(3 * pieces.length);
    for (const id of [0, 1, 12345, 65535]) expect(table.find(pieces[id]!, 0, 32)).toBe(id);
    expect(table.find('x' + pieces[7], 1, 33)).toBe(7);
  });

  it('draws a new hash base for every table, so no input is bad for all of them', () => {
    const bases = new Set(Array.from({ length: 8 }, () => new PieceTable(['a']).base));
    expect(bases.size).toBeGreaterThan(1);
  });

  it('the real vocabulary spreads well too', () => {
    const { tokens } = paligemmaVocab();
    expect(new PieceTable(tokens).buildProbes).toBeLessThan(2 * tokens.length);
  });
});

describe('long user-defined pieces', () => {
  /** A user-defined piece of `length` a's, and a prompt of near misses: `length - 1` a's then a b, `repeats` times. */
  function nearMisses(length: number, repeats: number) {
    const tok = new Tokenizer(vocabOf([['<unk>', TokenType.UNKNOWN], ['a'.repeat(length), TokenType.USER_DEFINED], ['a', TokenType.NORMAL], ['b', TokenType.NORMAL]]));
    const prompt = ('a'.repeat(length - 1) + 'b').repeat(repeats);
    return { tok, prompt };
  }

  it('tokenizing reads each character a bounded number of times, however long the piece (64 s for 200 KB before)', () => {
    // The old matcher walked the piece from every position: length × prompt reads (6.4e8 here).
    for (const length of [100, 16_000]) {
      const { tok, prompt } = nearMisses(length, Math.ceil(80_000 / length));
      const { result, reads } = countCharReads(() => tok.encode(prompt, { addBos: false }));
      expect(result.length).toBe(prompt.length);
      expect(reads / prompt.length, `piece of ${length}`).toBeLessThan(12);
    }
  });

  it('still finds the piece, leftmost and longest, among the near misses', () => {
    const { tok } = nearMisses(300, 1);
    const a300 = tok.tokenId('a'.repeat(300))!;
    const [a, b] = [tok.tokenId('a')!, tok.tokenId('b')!];
    const ids = tok.encode('a'.repeat(299) + 'b' + 'a'.repeat(601) + 'b', { addBos: false });
    expect(ids).toEqual([...Array(299).fill(a), b, a300, a300, a, b]);
  });
});

describe('maxTokens', () => {
  const tok = new Tokenizer({ ...paligemmaVocab(), ...GEMMA_IDS });

  it('refuses a text too long for the limit before reading a character of it', () => {
    expect(tok.longestPiece).toBe(31);
    const huge = 'x'.repeat(4 * 2 ** 20); // no spaces: the old tokenizer spent seconds on it before any check
    const { result, reads } = countCharReads(() => tokenizerError(() => tok.encode(huge, { maxTokens: 8192 })));
    expect(result.code).toBe('TOO_MANY_TOKENS');
    expect(result.message).toMatch(/more than 8192 tokens .*needs at least 135302 /); // ⌈4 Mi / 31⌉ + BOS
    expect(reads).toBe(0);
  });

  it('stops as soon as the ids pass the limit', () => {
    const text = 'the cat sat on the mat. '.repeat(1000); // 24,000 characters, 7,002 ids
    const all = tok.encode(text);
    expect(tok.encode(text, { maxTokens: all.length })).toEqual(all);
    const err = tokenizerError(() => tok.encode(text, { maxTokens: all.length - 1 }));
    expect(err.code).toBe('TOO_MANY_TOKENS');
    // Stopped early: the failing call reads the text about as often as an encode of it (one scan), not more.
    const full = countCharReads(() => tok.encode(text)).reads;
    const early = countCharReads(() => tokenizerError(() => tok.encode(text, { maxTokens: 100 }))).reads;
    expect(early).toBeLessThan(full / 2);
  });

  it('counts BOS, and accepts 0 and Infinity; anything else is BAD_INPUT', () => {
    expect(tok.encode('', { maxTokens: 1 })).toEqual([2]);
    expect(tokenizerError(() => tok.encode('', { maxTokens: 0 })).code).toBe('TOO_MANY_TOKENS');
    expect(tok.encode('', { maxTokens: 0, addBos: false })).toEqual([]);
    expect(tok.encode('hello', { maxTokens: Infinity })).toEqual(tok.encode('hello'));
    for (const bad of [-1, 1.5, NaN, '10', 2 ** 60]) {
      expect(tokenizerError(() => tok.encode('hello', { maxTokens: bad as number })).code).toBe('BAD_INPUT');
    }
  });

  it('without byte pieces (runs of unknown characters collapse into one <unk>) the length bound is not used', () => {
    const noBytes = new Tokenizer(vocabOf([['<unk>', TokenType.UNKNOWN], ['a', TokenType.NORMAL]], false));
    expect(noBytes.encode('z'.repeat(1000), { maxTokens: 1, addBos: false })).toEqual([0]);
  });
});

describe('limits on the vocabulary', () => {
  it(`a piece longer than ${MAX_PIECE_LENGTH} characters is LIMIT_EXCEEDED naming its index (was "Map maximum size exceeded")`, () => {
    const rows: [string, number][] = [['<unk>', TokenType.UNKNOWN], ['a', TokenType.NORMAL], ['x'.repeat(17_000_000), TokenType.USER_DEFINED]];
    const err = tokenizerError(() => new Tokenizer(vocabOf(rows)));
    expect(err.code).toBe('LIMIT_EXCEEDED');
    expect(err.message).toMatch(/^token 2 \("x{40}"…\) is 17000000 characters long; a piece may have at most 65536/);
    rows[2] = ['x'.repeat(MAX_PIECE_LENGTH), TokenType.USER_DEFINED];
    expect(new Tokenizer(vocabOf(rows)).vocabSize).toBe(259);
  });

  it('from a GGUF, the error names the file', () => {
    const vocab = vocabOf([['<unk>', TokenType.UNKNOWN], ['y'.repeat(MAX_PIECE_LENGTH + 1), TokenType.NORMAL]]);
    const metadata = new Map<string, GGUFValue>([
      ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
      ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: vocab.tokens }],
      ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: vocab.scores }],
      ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: vocab.types }],
    ]);
    const gguf: GGUFFile = { path: 'hostile.gguf', version: 3, alignment: 32, dataOffset: 0, fileSize: 0, metadata, tensors: [], tensorsByName: new Map() };
    const err = tokenizerError(() => Tokenizer.fromGGUF(gguf));
    expect(err.code).toBe('LIMIT_EXCEEDED');
    expect(err.message).toMatch(/^hostile\.gguf: token 1 \("y{40}"…\) is 65537 characters long/);
  });

  it(`user-defined, control and unknown pieces may total ${MAX_MATCHED_UNITS} characters`, () => {
    const rows: [string, number][] = [['<unk>', TokenType.UNKNOWN]];
    for (let i = 0; rows.length < 20; i++) rows.push([String.fromCharCode(0x4e00 + i).repeat(60_000), TokenType.USER_DEFINED]);
    const err = tokenizerError(() => new Tokenizer(vocabOf(rows)));
    expect(err.code).toBe('LIMIT_EXCEEDED');
    expect(err.message).toMatch(/^token 18 takes the user-defined, control and unknown pieces .* past 1048576 characters/);
    // The same pieces as NORMAL are not matched whole, so they cost the matcher nothing.
    expect(new Tokenizer(vocabOf(rows.map(([p], i) => [p, i === 0 ? TokenType.UNKNOWN : TokenType.NORMAL]))).vocabSize).toBe(276);
  });
});

describe('fuzz: hostile vocabularies', () => {
  /** Units that collide in pieces: a few letters, ▁, brackets of tags, a two-unit emoji, an accent. */
  const unit = fc.constantFrom('a', 'b', 'c', '\u2581', '<', '>', 'é', '🐱', 'x');
  const piece = fc.oneof(
    { arbitrary: fc.array(unit, { minLength: 1, maxLength: 6 }).map((u) => u.join('')), weight: 8 },
    { arbitrary: fc.tuple(unit, fc.integer({ min: 2, max: 120 })).map(([u, n]) => u.repeat(n)), weight: 1 },
    { arbitrary: fc.constantFrom('<image>', '<loc0001>', '<bos>', '<eos>', '<unk>', ''), weight: 1 },
  );
  const row = fc.tuple(
    piece,
    fc.constantFrom(TokenType.NORMAL, TokenType.NORMAL, TokenType.NORMAL, TokenType.USER_DEFINED, TokenType.CONTROL, TokenType.UNUSED, TokenType.UNKNOWN),
    fc.integer({ min: -8, max: 8 }), // few distinct scores: many ties
  );
  const vocab = fc.record({
    rows: fc.array(row, { minLength: 1, maxLength: 40 }),
    bytes: fc.boolean(),
    addSpacePrefix: fc.boolean(),
  });
  const text = fc.array(fc.oneof(unit, fc.constantFrom(' ', 'aaaa', '<image>', '<bos>', '\ud800', 'é🐱')), { maxLength: 30 }).map((u) => u.join(''));

  it('encode gives the reference tokenizer\'s ids, or both fail with a TokenizerError (2000 cases)', () => {
    let compared = 0;
    fc.assert(
      fc.property(vocab, fc.array(text, { minLength: 1, maxLength: 4 }), fc.boolean(), ({ rows, bytes, addSpacePrefix }, texts, parseSpecial) => {
        const table = vocabOf(rows.map(([p, t, s]) => [p, t, s]), bytes);
        let tok: Tokenizer;
        try {
          tok = new Tokenizer({ ...table, addSpacePrefix, addBos: false });
        } catch (err) {
          if (err instanceof TokenizerError) return;
          throw err;
        }
        for (const t of texts) {
          const outcome = (fn: () => number[]): number[] | string => {
            try {
              return fn();
            } catch (err) {
              if (err instanceof TokenizerError) return err.code;
              throw err;
            }
          };
          const got = outcome(() => tok.encode(t, { parseSpecial }));
          const want = outcome(() => referenceEncode({ ...table, unkId: tok.unkId, addSpacePrefix }, t, parseSpecial));
          expect(got, JSON.stringify({ rows, bytes, addSpacePrefix, t, parseSpecial })).toEqual(want);
          compared++;
          if (bytes && !addSpacePrefix && Array.isArray(got) && !rows.some(([p]) => p.startsWith('<0x'))) {
            // With byte pieces nothing is lost: decoding gives the text back (▁ and space are one character to BPE).
            expect(tok.decode(got, { specials: true }).replaceAll('\u2581', ' ')).toBe(t.toWellFormed().replaceAll('\u2581', ' '));
          }
        }
      }),
      { numRuns: 2000, seed: 1616 },
    );
    expect(compared).toBeGreaterThan(2000);
  });

  it('any scores (NaN, infinities) and any piece texts: a tokenizer that works, or a TokenizerError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: 'binary', maxLength: 8 }), fc.integer({ min: 0, max: 7 }), fc.float()), { minLength: 1, maxLength: 30 }),
        text,
        (rows, t) => {
          try {
            const tok = new Tokenizer({ ...vocabOf(rows, false), addBos: false });
            const ids = tok.encode(t, { parseSpecial: true, maxTokens: 1000 });
            for (const id of ids) expect(id >= 0 && id < tok.vocabSize).toBe(true);
            tok.decode(ids);
          } catch (err) {
            if (!(err instanceof TokenizerError)) throw err;
          }
        },
      ),
      { numRuns: 1000, seed: 1617 },
    );
  });
});
