/**
 * Fuzzing the tokenizer: random text (any code point, lone surrogates, spaces and U+2581, tag-like
 * and special-piece text) through encode and decode; random id sequences (broken UTF-8 byte-piece
 * runs included) through decode and the stream decoder; huge inputs; and corrupt
 * `tokenizer.ggml.*` metadata. Every case ends in a result or a TokenizerError — never another
 * exception, a hang or a malformed string. Seeds are fixed, so failures reproduce.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';

import type { GGUFFile, GGUFValue } from '../lib/gguf/index.js';
import { TokenType, Tokenizer, TokenizerError, type VocabTable } from '../lib/tokenizer/index.js';
import { GEMMA_IDS, paligemmaVocab } from './helpers/vocab.js';

const SPACE_MARK = '\u2581';
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Cases run over all properties (4 tokenizers x 3400, 6 huge inputs, 3000 metadata cases, 1 regression). */
let casesRun = 0;
afterAll(() => console.log(`fuzz-tokenizer: ${casesRun} cases`));
function check<T>(arb: fc.Arbitrary<T>, predicate: (value: T) => void, runs: number, seed: number): void {
  fc.assert(
    fc.property(arb, (v) => {
      casesRun++;
      predicate(v);
    }),
    { numRuns: runs, seed },
  );
}

/** Text units that reach every path of encode: merges, byte fallback, user-defined and control pieces. */
const textUnit = fc.oneof(
  { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), weight: 4 },
  { arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), weight: 1 },
  {
    arbitrary: fc.constantFrom(' ', '  ', '\n', '\t', '\r\n', SPACE_MARK, 'the', 'ing', ' cat', 'a', 'é', 'e\u0301', '日本', '🐱', '\u200d', '\0'),
    weight: 4,
  },
  {
    arbitrary: fc.constantFrom('<bos>', '<eos>', '<pad>', '<unk>', '<image>', '<loc0000>', '<loc1023>', '<loc10000>', '<seg127>', '<seg128>', '<0x41>', '<start_of_turn>', '<', '>', '<loc'),
    weight: 2,
  },
);
const anyText = fc.array(textUnit, { maxLength: 40 }).map((u) => u.join(''));

/** A tokenizer must either work or throw a TokenizerError. */
function expectOnlyTokenizerErrors(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof TokenizerError)) throw new Error(`expected a TokenizerError, got ${String(err)}`, { cause: err });
    return err;
  }
}

/** A small vocabulary: control pieces, a few merges, optionally the 256 byte pieces. */
function smallVocab(withBytes: boolean): VocabTable {
  const pieces: [string, number, number][] = [
    ['<pad>', 0, TokenType.CONTROL],
    ['<eos>', 0, TokenType.CONTROL],
    ['<bos>', 0, TokenType.CONTROL],
    ['<unk>', 0, TokenType.UNKNOWN],
    ['<image>', 0, TokenType.USER_DEFINED],
    ['<loc0001>', 0, TokenType.USER_DEFINED],
    ['<unused0>', 0, TokenType.UNUSED],
  ];
  if (withBytes) for (let b = 0; b < 256; b++) pieces.push([`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, 0, TokenType.BYTE]);
  for (const [i, p] of ['▁', 'a', 'b', 'c', 't', 'h', 'e', '▁a', 'ab', 'th', 'the', '▁the', 'abc', '日', '▁▁'].entries()) pieces.push([p, -i, TokenType.NORMAL]);
  return {
    tokens: pieces.map((p) => p[0]),
    scores: Float32Array.from(pieces, (p) => p[1]),
    types: Int32Array.from(pieces, (p) => p[2]),
  };
}

const tokenizers: Record<string, () => Tokenizer> = {
  paligemma: () => new Tokenizer({ ...paligemmaVocab(), ...GEMMA_IDS }),
  'small, byte fallback': () => new Tokenizer(smallVocab(true)),
  'small, no byte pieces (<unk> fallback)': () => new Tokenizer(smallVocab(false)),
  'small, space prefix': () => new Tokenizer({ ...smallVocab(true), addSpacePrefix: true }),
};

describe.each(Object.keys(tokenizers))('tokenizer fuzz: %s', (name) => {
  let tok: Tokenizer;
  const lossless = !name.includes('no byte pieces'); // without byte pieces, unknown text becomes <unk>
  beforeAll(() => {
    tok = tokenizers[name]();
  });

  it('encode accepts any string and returns ids inside the vocabulary', () => {
    check(
      anyText,
      (s) => {
        const ids = tok.encode(s, { addBos: false });
        for (const id of ids) expect(Number.isInteger(id) && id >= 0 && id < tok.vocabSize).toBe(true);
        tok.encode(s, { parseSpecial: true }); // the other matching mode must not throw either
      },
      1000,
      101,
    );
  });

  it('decode(encode(s)) gives back s (lone surrogates as U+FFFD) when the vocabulary has byte pieces', () => {
    check(
      anyText.filter((s) => !s.includes(SPACE_MARK)),
      (s) => {
        const back = tok.decode(tok.encode(s, { addBos: false }));
        if (lossless) expect(back).toBe(s.toWellFormed());
        else expect(LONE_SURROGATE.test(back)).toBe(false);
      },
      1000,
      102,
    );
  });

  it('decode and the stream decoder take any id sequence, broken byte runs included', () => {
    const byteIds = Array.from({ length: 256 }, (_, b) => tok.tokenId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)).filter(
      (id): id is number => id !== undefined,
    );
    // Byte pieces are drawn often, so lead, continuation and invalid bytes (C0, F5..FF) meet at random.
    const id = byteIds.length
      ? fc.oneof(fc.integer({ min: 0, max: tok.vocabSize - 1 }), fc.constantFrom(...byteIds))
      : fc.integer({ min: 0, max: tok.vocabSize - 1 });
    check(
      fc.tuple(fc.array(id, { maxLength: 30 }), fc.boolean()),
      ([ids, specials]) => {
        const text = tok.decode(ids, { specials });
        expect(LONE_SURROGATE.test(text), 'decode output is well-formed').toBe(false);
        const stream = tok.createStreamDecoder({ specials });
        let streamed = '';
        for (const i of ids) streamed += stream.push(i);
        expect(streamed + stream.flush()).toBe(text);
      },
      1000,
      103,
    );
  });

  it('decode rejects ids outside the vocabulary with a TokenizerError BAD_ID', () => {
    const bad = fc.oneof(
      fc.integer({ max: -1 }),
      fc.integer({ min: tok.vocabSize, max: tok.vocabSize + 1e9 }),
      fc.constantFrom(Number.NaN, Infinity, -Infinity, 1.5, -0.5, 2 ** 53),
    );
    check(
      fc.tuple(fc.array(fc.integer({ min: 0, max: tok.vocabSize - 1 }), { maxLength: 5 }), bad),
      ([ids, badId]) => {
        const err = expectOnlyTokenizerErrors(() => tok.decode([...ids, badId]));
        expect(err).toBeInstanceOf(TokenizerError);
        expect((err as TokenizerError).code).toBe('BAD_ID');
      },
      300,
      104,
    );
  });

  it('encode rejects non-strings with a TokenizerError BAD_INPUT', () => {
    check(
      fc.oneof(fc.integer(), fc.constant(null), fc.constant(undefined), fc.object(), fc.array(fc.string()), fc.uint8Array()),
      (v) => {
        const err = expectOnlyTokenizerErrors(() => tok.encode(v as never));
        expect((err as TokenizerError).code).toBe('BAD_INPUT');
      },
      100,
      105,
    );
  });
});

describe('huge inputs finish, with ids that decode back', () => {
  let tok: Tokenizer;
  beforeAll(() => {
    tok = tokenizers.paligemma();
  });

  // Sizes far beyond any prompt. A quadratic step (merges over a whole stretch, rescans) would take
  // hours at these sizes; linearithmic BPE takes seconds. Round trips prove nothing was dropped.
  const cases: [string, () => string][] = [
    ['1 MB of words', () => Array.from({ length: 160_000 }, (_, i) => ['the', 'cat', 'sat', 'on', 'a', 'mat', '日本語', '🐱'][i % 8]).join(' ')],
    ['256 KB without a single space (one BPE stretch)', () => 'abcdefghij'.repeat(25_600)],
    ['256 KB of one repeated letter (maximal merge chains)', () => 'a'.repeat(262_144)],
    ['128 K emoji (byte fallback for each)', () => '\u{1F9EC}'.repeat(131_072)],
    ['64 K lone surrogates', () => '\ud800'.repeat(65_536)],
    ['100 K <loc> pieces', () => '<loc0042>'.repeat(100_000)],
  ];
  it.each(cases)('%s', (_, make) => {
    const s = make();
    const ids = tok.encode(s, { addBos: false });
    expect(ids.length).toBeGreaterThan(0);
    expect(tok.decode(ids)).toBe(s.toWellFormed());
    casesRun++;
  });
});

describe('corrupt tokenizer metadata', () => {
  /** A valid tokenizer header (the small byte-fallback vocabulary). */
  const vocab = smallVocab(true);
  const valid = (): Map<string, GGUFValue> =>
    new Map<string, GGUFValue>([
      ['general.architecture', { type: 'string', value: 'gemma' }],
      ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
      ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: [...vocab.tokens] }],
      ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: vocab.scores.slice() }],
      ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: vocab.types.slice() }],
      ['tokenizer.ggml.bos_token_id', { type: 'u32', value: 2 }],
      ['tokenizer.ggml.eos_token_id', { type: 'u32', value: 1 }],
      ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: 3 }],
      ['tokenizer.ggml.padding_token_id', { type: 'u32', value: 0 }],
      ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
      ['tokenizer.ggml.add_space_prefix', { type: 'bool', value: false }],
    ]);
  const keys = [...valid().keys()];
  const gguf = (metadata: Map<string, GGUFValue>): GGUFFile => ({
    path: 'fuzz.gguf',
    version: 3,
    alignment: 32,
    dataOffset: 0,
    fileSize: 0,
    metadata,
    tensors: [],
    tensorsByName: new Map(),
  });
  const n = vocab.tokens.length;

  /** Values of every GGUF type, including the right type with hostile contents. */
  const anyValue: fc.Arbitrary<GGUFValue> = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 12 }).map((value): GGUFValue => ({ type: 'string', value })),
    fc.boolean().map((value): GGUFValue => ({ type: 'bool', value })),
    fc.integer({ min: 0, max: 0xffffffff }).map((value): GGUFValue => ({ type: 'u32', value })),
    fc.integer({ min: -0x80000000, max: 0x7fffffff }).map((value): GGUFValue => ({ type: 'i32', value })),
    fc.integer({ min: 0, max: 255 }).map((value): GGUFValue => ({ type: 'u8', value })),
    fc.double().map((value): GGUFValue => ({ type: 'f32', value })),
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((value): GGUFValue => ({ type: 'u64', value })),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((value): GGUFValue => ({ type: 'i64', value })),
    // Arrays of the right length with wrong or hostile items, and arrays of the wrong length.
    fc.array(fc.string({ maxLength: 6 }), { minLength: n, maxLength: n }).map((value): GGUFValue => ({ type: 'array', itemType: 'string', value })),
    fc.array(fc.string({ maxLength: 6 }), { maxLength: 8 }).map((value): GGUFValue => ({ type: 'array', itemType: 'string', value })),
    fc.array(fc.integer({ min: -10, max: 10 }), { minLength: n, maxLength: n }).map((v): GGUFValue => ({ type: 'array', itemType: 'i32', value: Int32Array.from(v) })),
    fc.array(fc.integer({ min: 0, max: 255 }), { minLength: n, maxLength: n }).map((v): GGUFValue => ({ type: 'array', itemType: 'u8', value: Uint8Array.from(v) })),
    fc.array(fc.double(), { minLength: n, maxLength: n }).map((v): GGUFValue => ({ type: 'array', itemType: 'f32', value: Float32Array.from(v) })),
    fc.array(fc.double(), { minLength: n, maxLength: n }).map((v): GGUFValue => ({ type: 'array', itemType: 'f64', value: Float64Array.from(v) })),
    fc.array(fc.boolean(), { minLength: n, maxLength: n }).map((value): GGUFValue => ({ type: 'array', itemType: 'bool', value })),
    fc.constant<GGUFValue>({ type: 'array', itemType: 'array', value: [] }),
    fc.constant<GGUFValue>({ type: 'array', itemType: 'u64', value: new BigUint64Array(n) }),
  );

  it('wrong types and hostile values for the known keys: a tokenizer that works, or a TokenizerError', () => {
    check(
      fc.array(fc.tuple(fc.constantFrom(...keys), fc.option(anyValue, { nil: undefined })), { minLength: 1, maxLength: 3 }),
      (edits) => {
        const metadata = valid();
        for (const [key, value] of edits) {
          if (value === undefined) metadata.delete(key);
          else metadata.set(key, value);
        }
        const result = expectOnlyTokenizerErrors(() => Tokenizer.fromGGUF(gguf(metadata)));
        if (result instanceof Tokenizer) {
          // Whatever was accepted must be usable: specials inside the vocabulary, encode/decode total.
          for (const id of [result.bosId, result.eosId, result.unkId, result.padId]) expect(id >= -1 && id < result.vocabSize).toBe(true);
          const ids = result.encode('the cat 日本 🐱 <image>');
          result.decode(ids);
        } else {
          expect((result as TokenizerError).message.length).toBeGreaterThan(10);
        }
      },
      3000,
      106,
    );
  });

  it('a 64-bit integer where the model name belongs (found by the fuzzer): UNSUPPORTED_MODEL, not a TypeError', () => {
    // The error message used to JSON.stringify the value, which throws on a bigint.
    const metadata = valid();
    metadata.set('tokenizer.ggml.model', { type: 'u64', value: 0n });
    const err = expectOnlyTokenizerErrors(() => Tokenizer.fromGGUF(gguf(metadata)));
    expect((err as TokenizerError).code).toBe('UNSUPPORTED_MODEL');
    casesRun++;
  });
});
