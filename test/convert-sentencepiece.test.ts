import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ConvertError } from '../lib/convert/errors.js';
import { readSentencePieceModel } from '../lib/convert/sentencepiece-model.js';
import { encodeSentencePieceModel, tinySentencePieceVocab } from './helpers/hf-checkpoint.js';
import type { SPPiece } from './helpers/hf-checkpoint.js';

function expectRejects(bytes: Uint8Array, pattern: RegExp): void {
  let err: unknown;
  try {
    readSentencePieceModel(bytes, 'tokenizer.model');
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConvertError);
  expect((err as ConvertError).code).toBe('BAD_TOKENIZER');
  expect((err as Error).message).toMatch(pattern);
}

describe('SentencePiece ModelProto reader', () => {
  it('reads pieces, exact scores and types, skipping other fields', () => {
    const pieces = tinySentencePieceVocab();
    pieces.push({ piece: '▁héllo', score: -12345.678, type: 1 }, { piece: '😀', score: 1e-30, type: 5 });
    const vocab = readSentencePieceModel(encodeSentencePieceModel(pieces, { extras: true }));
    expect(vocab.tokens).toEqual(pieces.map((p) => p.piece));
    expect(Array.from(vocab.types)).toEqual(pieces.map((p) => p.type));
    expect(Array.from(vocab.scores)).toEqual(pieces.map((p) => Math.fround(p.score))); // stored as float32
  });

  it('applies proto2 defaults: type normal, score 0', () => {
    const vocab = readSentencePieceModel(encodeSentencePieceModel([{ piece: 'a', score: 0, type: 1 }]));
    expect(vocab.types[0]).toBe(1);
    expect(vocab.scores[0]).toBe(0);
  });

  it('round-trips random vocabularies', () => {
    const piece = fc.record({
      piece: fc.string({ minLength: 1, maxLength: 12 }),
      score: fc.float({ noNaN: true, noDefaultInfinity: true }),
      type: fc.integer({ min: 1, max: 6 }),
    });
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 40 }), (pieces: SPPiece[]) => {
        const v = readSentencePieceModel(encodeSentencePieceModel(pieces));
        expect(v.tokens).toEqual(pieces.map((p) => p.piece));
        expect(Array.from(v.scores)).toEqual(pieces.map((p) => p.score));
        expect(Array.from(v.types)).toEqual(pieces.map((p) => p.type));
      }),
      { numRuns: 200, seed: 3 },
    );
  });

  it('rejects corrupt input with a typed error', () => {
    const good = encodeSentencePieceModel([{ piece: 'abc', score: -1, type: 1 }]);
    expectRejects(good.subarray(0, good.length - 2), /runs past the end|truncated/);
    expectRejects(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), /runs past the end/); // length 4 GB
    expectRejects(Uint8Array.from([0x0a, 0x03, 0x0a, 0x01, 0xff]), /UTF-8/); // piece bytes 0xff
    expectRejects(Uint8Array.from([0x0a, 0x02, 0x18, 0x09]), /no text|unknown piece type/); // type 9
    expectRejects(Uint8Array.from([0x0b]), /wire type 3/); // a group start: not used by SentencePiece
    expectRejects(Uint8Array.from(Array(11).fill(0x80)), /varint/);
    expectRejects(new Uint8Array(0), /no pieces/);
  });

  it('fuzz: random bytes and bit flips end in a vocabulary or a ConvertError', () => {
    const good = encodeSentencePieceModel(tinySentencePieceVocab().slice(0, 30), { extras: true });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.tuple(fc.nat(good.length - 1), fc.nat(7)).map(([at, bit]) => {
        const b = Uint8Array.from(good);
        b[at]! ^= 1 << bit;
        return b;
      })), (bytes) => {
        try {
          const v = readSentencePieceModel(bytes);
          expect(v.tokens.length).toBe(v.scores.length);
        } catch (err) {
          if (!(err instanceof ConvertError)) throw err;
        }
      }),
      { numRuns: 1000, seed: 5 },
    );
  });
});
