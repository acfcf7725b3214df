/**
 * Tokenizer: exactness against real SentencePiece ids (shared ground truth), the PaliGemma rules (user-defined
 * pieces, special parsing, no space prefix), decoding and streaming, GGUF metadata handling, and the
 * tokenizer.json → vocabulary conversion.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vocabFromTokenizerJson } from '../lib/convert/vocab.js';
import { readGGUF, writeGGUF, type GGUFFile, type GGUFValue } from '../lib/gguf/index.js';
import { TokenType, Tokenizer, TokenizerError, type VocabTable } from '../lib/tokenizer/index.js';
import { paligemmaTextModelLayout } from './helpers/gguf-fixtures.js';
import { GEMMA_IDS, PALIGEMMA_VOCAB_SIZE, gemmaTokenizerJson, gemmaVocab, paligemmaVocab, fixturesDir } from './helpers/vocab.js';

const IMAGE = 257152;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const NEWLINE = 108;

interface GroundTruthCase {
  text: string;
  ids: number[];
  pieces: string[];
}
const groundTruth = JSON.parse(readFileSync(path.join(fixturesDir, 'tokenizer/sentencepiece-gemma.json'), 'utf8')) as {
  sets: Record<string, GroundTruthCase[]>;
};
const allCases = Object.values(groundTruth.sets).flat();

/** Expect a TokenizerError with this code. */
function expectTokenizerError(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TokenizerError);
    expect((e as TokenizerError).code).toBe(code);
    if (message) expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error(`expected a TokenizerError ${code}`);
}

/** A GGUFFile held in memory, for tests that do not need the file format. */
function ggufInMemory(entries: [string, GGUFValue][]): GGUFFile {
  return {
    path: 'in-memory.gguf',
    version: 3,
    alignment: 32,
    dataOffset: 0,
    fileSize: 0,
    metadata: new Map(entries),
    tensors: [],
    tensorsByName: new Map(),
  };
}

function vocabMetadata(vocab: VocabTable, architecture = 'gemma'): [string, GGUFValue][] {
  return [
    ['general.architecture', { type: 'string', value: architecture }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: vocab.types }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: 2 }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: 1 }],
    ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: 3 }],
    ['tokenizer.ggml.padding_token_id', { type: 'u32', value: 0 }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
  ];
}

const { CONTROL, UNKNOWN } = TokenType;

/** A small hand-made vocabulary: `pieces` as [text, score, type (default NORMAL)]. */
function smallVocab(pieces: [string, number, number?][]): VocabTable {
  return {
    tokens: pieces.map((p) => p[0]),
    scores: Float32Array.from(pieces, (p) => p[1]),
    types: Int32Array.from(pieces, (p) => p[2] ?? TokenType.NORMAL),
  };
}

function tinyTokenizer(pieces: [string, number, number?][], extra: Partial<ConstructorParameters<typeof Tokenizer>[0]> = {}) {
  return new Tokenizer({ ...smallVocab(pieces), ...extra });
}

describe('SentencePiece ground truth (Gemma vocabulary)', () => {
  let gemma: Tokenizer;
  beforeAll(() => {
    gemma = new Tokenizer({ ...gemmaVocab(), ...GEMMA_IDS });
  });

  it('has all 406 cases', () => {
    expect(allCases.length).toBe(406);
  });

  it('reproduces every id sequence exactly', () => {
    const mismatches = allCases
      .map((c) => ({ text: c.text, expected: c.ids, got: gemma.encode(c.text, { addBos: false }) }))
      .filter((m) => JSON.stringify(m.expected) !== JSON.stringify(m.got));
    expect(mismatches).toEqual([]);
  });

  it('names the pieces as SentencePiece does (the tab byte is <0x09>)', () => {
    for (const c of allCases) expect(c.ids.map((id) => gemma.tokenToPiece(id))).toEqual(c.pieces);
  });

  it('decodes back to the text (except U+2581, which SentencePiece itself reads as a space)', () => {
    for (const c of allCases) {
      expect(gemma.decode(c.ids)).toBe(c.text.replaceAll('\u2581', ' '));
    }
  });

  it('gives the same ids when BPE has to run over whole stretches instead of per word', () => {
    // Extra pieces with an inner ▁ let merges cross word starts, which turns off the per-word shortcut.
    const v = gemmaVocab();
    const n = v.tokens.length;
    const scores = new Float32Array(n + 2);
    scores.set(v.scores);
    scores.fill(-1e9, n); // below every Gemma piece: they merge last
    const types = new Int32Array(n + 2);
    types.set(v.types);
    types.fill(TokenType.NORMAL, n);
    const whole = new Tokenizer({ tokens: [...v.tokens, 'zq▁q', 'zq▁qz'], scores, types, ...GEMMA_IDS });
    const mismatches = allCases.filter((c) => JSON.stringify(whole.encode(c.text, { addBos: false })) !== JSON.stringify(c.ids));
    expect(mismatches).toEqual([]);
    expect(whole.encode('zq qz', { addBos: false })).toEqual([n + 1]); // zq ▁q z → zq▁q z → zq▁qz
  });

  it('gives the same ids with the PaliGemma vocabulary for text without PaliGemma pieces', () => {
    const pali = new Tokenizer({ ...paligemmaVocab(), ...GEMMA_IDS });
    const plain = allCases.filter((c) => !/<loc\d{4}>|<seg\d{3}>|<image>/.test(c.text));
    expect(plain.length).toBeGreaterThan(400);
    for (const c of plain) expect(pali.encode(c.text, { addBos: false })).toEqual(c.ids);
  });
});

describe('PaliGemma encoding rules', () => {
  let tok: Tokenizer;
  beforeAll(() => {
    tok = new Tokenizer({ ...paligemmaVocab(), ...GEMMA_IDS });
  });
  const enc = (text: string, parseSpecial = false) => tok.encode(text, { addBos: false, parseSpecial });

  it('exposes the vocabulary facts', () => {
    expect(tok.vocabSize).toBe(PALIGEMMA_VOCAB_SIZE);
    expect([tok.bosId, tok.eosId, tok.unkId, tok.padId]).toEqual([2, 1, 3, 0]);
    expect(tok.addBos).toBe(true);
    expect(tok.addSpacePrefix).toBe(false);
    expect(tok.tokenToPiece(256123)).toBe('<loc0123>');
    expect(tok.tokenId('<seg127>')).toBe(257151);
    expect(tok.tokenId('<image>')).toBe(IMAGE);
    expect(tok.tokenId('no such piece')).toBeUndefined();
    expect(tok.tokenType(IMAGE)).toBe(TokenType.USER_DEFINED);
  });

  it('adds BOS by default and on request only', () => {
    expect(tok.encode('caption en')).toEqual([2, 21209, 659]);
    expect(tok.encode('caption en', { addBos: false })).toEqual([21209, 659]);
  });

  it('matches control text only with parseSpecial', () => {
    const off = enc('<bos>hi<eos>');
    expect(off).not.toContain(2);
    expect(off).not.toContain(1);
    expect(tok.decode(off)).toBe('<bos>hi<eos>');
    expect(enc('<bos>hi<eos>', true)).toEqual([2, ...enc('hi'), 1]);
    expect(enc('a<pad>b<unk>', true)).toEqual([...enc('a'), 0, ...enc('b'), 3]);
    // User-defined pieces are matched either way.
    expect(enc('<start_of_turn>', true)).toEqual([106]);
  });

  it('takes <locNNNN> whole, even mid-word, and never merges it with neighbours', () => {
    expect(enc('<loc0123>')).toEqual([256123]);
    expect(enc('abc<loc0123>def')).toEqual([...enc('abc'), 256123, ...enc('def')]);
    expect(enc('cat<loc0001><loc1023><seg064> dog')).toEqual([...enc('cat'), 256001, 257023, 257088, ...enc(' dog')]);
    // Incomplete or malformed tags are ordinary text.
    expect(enc('<loc012>')).not.toContain(256012);
    expect(enc('<loc01234>').some((id) => id >= 256000)).toBe(false);
  });

  it('encodes <image> runs as image tokens', () => {
    expect(enc('<image>'.repeat(256))).toEqual(new Array(256).fill(IMAGE));
    expect(enc('<image><image>x<image>')).toEqual([IMAGE, IMAGE, ...enc('x'), IMAGE]);
    expect(enc('<image>'.repeat(3) + '<bos>caption en\n', true)).toEqual([IMAGE, IMAGE, IMAGE, 2, 21209, 659, NEWLINE]);
  });

  it('adds no space prefix and folds no whitespace', () => {
    expect(enc('caption en')).toEqual([21209, 659]);
    expect(enc(' caption')).not.toEqual(enc('caption'));
    expect(tok.decode(enc('  a \n\n b\t'))).toBe('  a \n\n b\t');
  });

  it('spells characters outside the vocabulary as byte pieces', () => {
    const ids = enc('\u{2A6D6}'); // a CJK Extension B character Gemma has no piece for
    expect(ids.map((id) => tok.tokenToPiece(id))).toEqual(['<0xF0>', '<0xAA>', '<0x9B>', '<0x96>']);
    expect(tok.decode(ids)).toBe('\u{2A6D6}');
    // A lone surrogate has no UTF-8 form: it is encoded as U+FFFD, as TextEncoder would.
    expect(enc('a\ud800b\udc00')).toEqual(enc('a\ufffdb\ufffd'));
    expect(enc('\ud83d\ude00')).toEqual(enc('😀')); // a proper pair is one character
  });

  it('decodes control pieces only when asked', () => {
    const ids = [2, ...enc('hi'), 1, 0];
    expect(tok.decode(ids)).toBe('hi');
    expect(tok.decode(ids, { specials: true })).toBe('<bos>hi<eos><pad>');
    expect(tok.decode([256000, IMAGE])).toBe('<loc0000><image>');
  });

  it('streams without ever splitting a character', () => {
    // 🫨 and 🪿 (newer emoji) and the CJK Extension B characters are not Gemma pieces: four byte tokens each.
    const text = 'a\u{2A6D6}b🫨\u{2A6D7}🪿😀 日本語 ok🫨!';
    const ids = enc(text);
    expect(ids.filter((id) => tok.tokenType(id) === TokenType.BYTE).length).toBe(20);
    const stream = tok.createStreamDecoder();
    const chunks = ids.map((id) => stream.push(id));
    chunks.push(stream.flush());
    expect(chunks.join('')).toBe(text);
    for (const chunk of chunks) {
      expect(chunk).not.toContain('\ufffd');
      expect(chunk).not.toMatch(LONE_SURROGATE); // whole characters only
    }
  });

  it('streams an unfinished byte sequence as U+FFFD', () => {
    const bytes = enc('\u{2A6D6}'); // four byte pieces
    const stream = tok.createStreamDecoder();
    expect(stream.push(bytes[0])).toBe('');
    expect(stream.push(bytes[1])).toBe('');
    expect(stream.push(enc('x')[0])).toBe('\ufffdx');
    expect(stream.push(bytes[0])).toBe('');
    expect(stream.flush()).toBe('\ufffd');
    expect(tok.decode([bytes[0], bytes[1]])).toBe('\ufffd');
  });

  it('rejects bad ids and non-string text with typed errors', () => {
    expectTokenizerError(() => tok.decode([5, PALIGEMMA_VOCAB_SIZE]), 'BAD_ID', /257216/);
    expectTokenizerError(() => tok.decode([-1]), 'BAD_ID');
    expectTokenizerError(() => tok.decode([1.5]), 'BAD_ID');
    expectTokenizerError(() => tok.tokenToPiece(NaN), 'BAD_ID');
    expectTokenizerError(() => tok.encode(42 as unknown as string), 'BAD_INPUT');
  });
});

describe('BPE mechanics on a hand-made vocabulary', () => {
  const { NORMAL, USER_DEFINED, UNUSED, BYTE } = TokenType;
  const bytes = Array.from({ length: 256 }, (_, b): [string, number, number] => [
    `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`,
    0,
    BYTE,
  ]);

  it('merges the highest-scoring pair first, leftmost on ties', () => {
    const tok = tinyTokenizer([['a', 0], ['b', 0], ['aa', -1], ['ab', -2], ['aab', -3]]);
    // "aab": (a,a)→aa scores above (a,b)→ab, then aa+b → aab.
    expect(tok.encode('aab', { addBos: false })).toEqual([4]);
    // "aaa": both pairs make "aa" (equal score) → the left one merges: aa, a.
    expect(tok.encode('aaa', { addBos: false })).toEqual([2, 0]);
    // Lower-scored "ab" wins only where "aa" is not possible.
    expect(tok.encode('bab', { addBos: false })).toEqual([1, 3]);
  });

  it('does not pre-split on spaces when a piece spans one', () => {
    const tok = tinyTokenizer([['a', 0], ['▁', 0], ['a▁', -1], ['a▁a', -2]]);
    expect(tok.encode('a a', { addBos: false })).toEqual([3]);
    expect(tok.decode([3])).toBe('a a');
  });

  it('undoes merges that produce UNUSED pieces (SentencePiece resegmentation)', () => {
    const tok = tinyTokenizer([['a', 0], ['b', 0], ['c', 0], ['ab', -1, UNUSED], ['abc', -2]]);
    expect(tok.encode('ab', { addBos: false })).toEqual([0, 1]);
    expect(tok.encode('abc', { addBos: false })).toEqual([4]);
  });

  it('keeps user-defined pieces out of merges and prefers the longest', () => {
    const tok = tinyTokenizer([
      ['x', 0], ['<', 0], ['>', 0], ['<t>', 0, USER_DEFINED], ['<t><t>', 0, USER_DEFINED], ['x<', -1], ['>x', -1],
    ]);
    expect(tok.encode('x<t>x', { addBos: false })).toEqual([0, 3, 0]);
    expect(tok.encode('<t><t><t>', { addBos: false })).toEqual([4, 3]);
  });

  it('falls back to bytes, or to a single <unk> for a run without byte pieces', () => {
    const withBytes = tinyTokenizer([['<unk>', 0, TokenType.UNKNOWN], ['a', 0], ...bytes]);
    expect(withBytes.encode('aé', { addBos: false })).toEqual([1, 2 + 0xc3, 2 + 0xa9]);
    const noBytes = tinyTokenizer([['<unk>', 0, TokenType.UNKNOWN], ['a', 0]]);
    expect(noBytes.encode('aéé€a', { addBos: false })).toEqual([1, 0, 1]);
    const nothing = tinyTokenizer([['a', 0]]);
    expectTokenizerError(() => nothing.encode('é', { addBos: false }), 'BAD_VOCAB', /no byte pieces and no <unk>/);
  });

  it('honours an explicit space prefix on encode and decode', () => {
    const tok = tinyTokenizer([['<bos>', 0, CONTROL], ['▁', 0], ['a', 0], ['▁a', -1]], { addSpacePrefix: true });
    expect(tok.encode('a a')).toEqual([0, 3, 3]);
    expect(tok.decode([0, 3, 3])).toBe('a a');
  });

  it('treats PaliGemma pieces as user-defined whatever type the table gives them', () => {
    const tok = tinyTokenizer([['<', 0], ['l', 0], ['<l', -1], ['<loc0001>', 0, NORMAL], ['<image>', 0, CONTROL]]);
    expect(tok.encode('<l<loc0001><image>', { addBos: false })).toEqual([2, 3, 4]);
    expect(tok.decode([3, 4])).toBe('<loc0001><image>');
  });

  it('rejects inconsistent tables', () => {
    expectTokenizerError(() => new Tokenizer({ tokens: [], scores: new Float32Array(), types: new Int32Array() }), 'BAD_VOCAB');
    expectTokenizerError(
      () => new Tokenizer({ tokens: ['a', 'b'], scores: new Float32Array(1), types: new Int32Array(2).fill(1) }),
      'BAD_VOCAB',
      /scores/,
    );
    expectTokenizerError(() => tinyTokenizer([['a', 0, 9]]), 'BAD_VOCAB', /unknown type 9/);
    expectTokenizerError(() => tinyTokenizer([['a', 0, BYTE]]), 'BAD_VOCAB', /<0xNN>/);
    expectTokenizerError(() => tinyTokenizer([['a', 0]], { bosId: 5 }), 'BAD_ID', /bosId 5/);
  });
});

describe('Tokenizer.fromGGUF', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'paligemma-tokenizer-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file with the published metadata: no add_space_prefix key → no prefix', async () => {
    const vocab = paligemmaVocab();
    const layout = paligemmaTextModelLayout({ vocab: { tokens: vocab.tokens, scores: vocab.scores, tokenTypes: vocab.types } });
    expect(layout.metadata instanceof Map && layout.metadata.has('tokenizer.ggml.add_space_prefix')).toBe(false);
    const file = path.join(dir, 'published-metadata.gguf');
    await writeGGUF(file, { metadata: layout.metadata, tensors: [] });
    const tok = Tokenizer.fromGGUF(await readGGUF(file));
    expect(tok.addSpacePrefix).toBe(false);
    expect(tok.addBos).toBe(true);
    expect(tok.encode('caption en')).toEqual([2, 21209, 659]); // llama.cpp's default would give ▁caption
    expect(tok.encode('detect cat<loc0001>', { addBos: false })).toEqual([...tok.encode('detect cat', { addBos: false }), 256001]);
  });

  it('lets an explicit add_space_prefix key win, and defaults other architectures to a prefix', () => {
    const vocab = smallVocab([['<pad>', 0, CONTROL], ['<eos>', 0, CONTROL], ['<bos>', 0, CONTROL], ['<unk>', 0, UNKNOWN], ['▁', 0], ['a', 0], ['▁a', -1]]);
    const open = (architecture: string, prefix?: boolean) =>
      Tokenizer.fromGGUF(
        ggufInMemory([
          ...vocabMetadata(vocab, architecture),
          ...(prefix === undefined ? [] : [['tokenizer.ggml.add_space_prefix', { type: 'bool', value: prefix }] as [string, GGUFValue]]),
        ]),
      );
    const withKey = open('gemma', true);
    expect(withKey.addSpacePrefix).toBe(true);
    expect(withKey.encode('a a')).toEqual([2, 6, 6]);
    expect(withKey.decode([2, 6, 6])).toBe('a a');
    expect(open('gemma').encode('a a')).toEqual([2, 5, 6]);
    expect(open('gemma2').addSpacePrefix).toBe(false);
    expect(open('paligemma').addSpacePrefix).toBe(false);
    expect(open('llama').addSpacePrefix).toBe(true);
    expect(open('llama', false).addSpacePrefix).toBe(false);
  });

  it('matches PaliGemma pieces whole in a file that types nothing as user-defined', () => {
    const vocab = paligemmaVocab();
    const types = vocab.types.map((t) => (t === TokenType.USER_DEFINED ? TokenType.NORMAL : t));
    const tok = Tokenizer.fromGGUF(ggufInMemory(vocabMetadata({ ...vocab, types })));
    expect(tok.encode('<image><image>caption en<loc0005>', { addBos: false })).toEqual([IMAGE, IMAGE, 21209, 659, 256005]);
    // Documented behaviour: other tag-like text is plain text there, not the single piece SentencePiece gives.
    expect(tok.encode('<start_of_turn>', { addBos: false })).not.toEqual([106]);
  });

  it('rejects missing, mistyped and inconsistent keys', () => {
    const meta = vocabMetadata(smallVocab([['<pad>', 0, CONTROL], ['<eos>', 0, CONTROL], ['<bos>', 0, CONTROL], ['<unk>', 0, UNKNOWN]]));
    const without = (key: string) => ggufInMemory(meta.filter(([k]) => k !== key));
    const replaced = (key: string, value: GGUFValue) => ggufInMemory(meta.map(([k, v]) => [k, k === key ? value : v]));
    expectTokenizerError(() => Tokenizer.fromGGUF(without('tokenizer.ggml.tokens')), 'MISSING_KEY', /tokenizer\.ggml\.tokens/);
    expectTokenizerError(() => Tokenizer.fromGGUF(without('tokenizer.ggml.model')), 'MISSING_KEY');
    expectTokenizerError(
      () => Tokenizer.fromGGUF(replaced('tokenizer.ggml.model', { type: 'string', value: 'gpt2' })),
      'UNSUPPORTED_MODEL',
      /gpt2/,
    );
    expectTokenizerError(
      () => Tokenizer.fromGGUF(replaced('tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: new Float32Array(3) })),
      'BAD_VOCAB',
      /scores has 3/,
    );
    expectTokenizerError(
      () => Tokenizer.fromGGUF(replaced('tokenizer.ggml.bos_token_id', { type: 'u32', value: 999999 })),
      'BAD_ID',
      /bosId 999999/,
    );
    expectTokenizerError(
      () => Tokenizer.fromGGUF(replaced('tokenizer.ggml.add_bos_token', { type: 'u8', value: 1 })),
      'BAD_VOCAB',
      /add_bos_token is not a bool/,
    );
  });
});

describe('paligemma-tiny fixture', () => {
  const fixture = path.join(fixturesDir, 'paligemma-tiny');
  const config = JSON.parse(readFileSync(path.join(fixture, 'config.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(path.join(fixture, 'golden/manifest.json'), 'utf8'));
  let tok: Tokenizer;
  let vocab: VocabTable;
  beforeAll(() => {
    const json = JSON.parse(readFileSync(path.join(fixture, 'tokenizer.json'), 'utf8'));
    vocab = vocabFromTokenizerJson(json, { paligemma: true, padTo: config.vocab_size });
    tok = new Tokenizer({ ...vocab, ...GEMMA_IDS });
  });

  it('takes the PaliGemma pieces from the added tokens and agrees with the appended layout', () => {
    expect(vocab.tokens.length).toBe(257216);
    expect(vocab.tokens[config.image_token_index]).toBe('<image>');
    // Same table as Gemma's json + appended pieces (the fixture's vocab and merges are Gemma's).
    const built = paligemmaVocab();
    let differences = 0;
    for (let id = 0; id < built.tokens.length; id++) {
      if (vocab.tokens[id] !== built.tokens[id] || vocab.types[id] !== built.types[id] || vocab.scores[id] !== built.scores[id]) differences++;
    }
    expect(differences).toBe(0);
  });

  it('reproduces the golden input_ids of every case', () => {
    expect(manifest.cases.length).toBeGreaterThan(0);
    for (const c of manifest.cases) {
      const ids = [...new Array(manifest.num_image_tokens).fill(config.image_token_index), 2, ...tok.encode(c.prompt, { addBos: false }), NEWLINE];
      expect(ids).toEqual(c.input_ids);
      // The same string the reference tokenized, in one go.
      expect(tok.encode(c.full_prompt_string, { addBos: false, parseSpecial: true })).toEqual(c.input_ids);
      const golden = readFileSync(path.join(fixture, 'golden', `${c.name}.input_ids.i32.bin`));
      expect(Array.from(new Int32Array(golden.buffer, golden.byteOffset, golden.byteLength / 4))).toEqual(c.input_ids);
    }
  });
});

describe('vocabFromTokenizerJson', () => {
  it('types and scores the Gemma vocabulary', () => {
    const v = gemmaVocab();
    expect(v.tokens.length).toBe(256000);
    expect(Array.from(v.types.subarray(0, 5))).toEqual([TokenType.CONTROL, TokenType.CONTROL, TokenType.CONTROL, TokenType.UNKNOWN, TokenType.USER_DEFINED]);
    expect([v.tokens[217], v.tokens[226], v.tokens[472]]).toEqual(['<0x00>', '<0x09>', '<0xFF>']);
    expect(v.types[226]).toBe(TokenType.BYTE);
    expect([v.types[216], v.types[217], v.types[473], v.types[255967]]).toEqual([
      TokenType.USER_DEFINED, TokenType.BYTE, TokenType.NORMAL, TokenType.NORMAL,
    ]);
    expect([v.types[255968], v.types[255999]]).toEqual([TokenType.USER_DEFINED, TokenType.USER_DEFINED]);
    expect(v.scores[4]).toBe(0);

    // Score = -(rank of the first merge producing the piece), checked directly against the merge list.
    const merges = (gemmaTokenizerJson() as { model: { merges: string[] } }).model.merges;
    const idOf = new Map(v.tokens.map((t, i) => [t, i]));
    const firstRank = new Map<string, number>();
    merges.forEach((m, rank) => {
      const piece = m.replace(' ', '');
      if (!firstRank.has(piece)) firstRank.set(piece, rank);
    });
    let checked = 0;
    for (const [piece, rank] of firstRank) {
      const id = idOf.get(piece)!;
      if (v.types[id] !== TokenType.NORMAL) continue;
      if (v.scores[id] !== -rank) expect(v.scores[id], piece).toBe(-rank);
      checked++;
    }
    expect(checked).toBeGreaterThan(230_000);
    // Single characters are never merge results: they score below every merged piece.
    expect(v.scores[idOf.get('e')!]).toBeLessThan(-merges.length);
  });

  it('appends the PaliGemma pieces and pads with unused pieces', () => {
    const v = paligemmaVocab();
    expect(v.tokens.length).toBe(PALIGEMMA_VOCAB_SIZE);
    expect([v.tokens[256000], v.tokens[257023], v.tokens[257024], v.tokens[257151], v.tokens[257152]]).toEqual([
      '<loc0000>', '<loc1023>', '<seg000>', '<seg127>', '<image>',
    ]);
    for (const id of [256000, 257151, 257152]) expect(v.types[id]).toBe(TokenType.USER_DEFINED);
    expect(v.tokens[257153]).toBe('[PAD257153]');
    expect(v.types[257215]).toBe(TokenType.UNUSED);
  });

  const tiny = (extra: Record<string, unknown> = {}, model: Record<string, unknown> = {}) => ({
    added_tokens: [{ id: 0, content: '<unk>', special: true }],
    model: { type: 'BPE', unk_token: '<unk>', vocab: { '<unk>': 0, a: 1, b: 2, ab: 3 }, merges: ['a b'], ...model },
    ...extra,
  });

  it('accepts both merge spellings on a small file', () => {
    for (const merges of [['a b'], [['a', 'b']]]) {
      const v = vocabFromTokenizerJson(tiny({}, { merges }), { userDefinedRanges: [] });
      expect(v.tokens).toEqual(['<unk>', 'a', 'b', 'ab']);
      expect(Array.from(v.types)).toEqual([TokenType.UNKNOWN, 1, 1, 1]);
      expect(Array.from(v.scores)).toEqual([0, -(1 + 1), -(1 + 2), 0]); // 'ab' is made by merge 0
    }
  });

  it('rejects malformed files with a message naming the problem', () => {
    expectTokenizerError(() => vocabFromTokenizerJson({}), 'MISSING_KEY', /model/);
    expectTokenizerError(() => vocabFromTokenizerJson(tiny({}, { type: 'Unigram' })), 'BAD_VOCAB', /Unigram/);
    expectTokenizerError(() => vocabFromTokenizerJson(tiny({}, { vocab: { '<unk>': 0, a: 2 } })), 'BAD_VOCAB', /no piece has id 1/);
    expectTokenizerError(() => vocabFromTokenizerJson(tiny({}, { vocab: { '<unk>': 0, a: 1e12 } })), 'BAD_VOCAB');
    expectTokenizerError(() => vocabFromTokenizerJson(tiny({}, { merges: ['ab'] })), 'BAD_VOCAB', /merges\[0\]/);
    expectTokenizerError(() => vocabFromTokenizerJson(tiny(), { padTo: 2 }), 'BAD_VOCAB', /padTo 2/);
    expectTokenizerError(
      () => vocabFromTokenizerJson(tiny({}, { vocab: { '<unk>': 0, a: 1, b: 2, ab: 3, '<image>': 4 } }), { paligemma: true }),
      'BAD_VOCAB',
      /1 of the 1153 PaliGemma pieces/,
    );
  });
});
