/**
 * The vocabulary of a Hugging Face checkpoint, as the text GGUF stores it: `tokenizer.model` when present
 * (exact SentencePiece scores and types), else `tokenizer.json` (see vocab.ts); padded with `[PAD{id}]`
 * pieces (type UNUSED, score 0) to the embedding's row count.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { readRegularFile } from '../files.js';
import { ConvertError, convertFileError } from './errors.js';
import { readSentencePieceModel } from './sentencepiece-model.js';
import { vocabFromTokenizerJson } from './vocab.js';
import { PALIGEMMA_PIECE, TokenType, TokenizerError } from '../tokenizer/vocab-types.js';
import type { VocabTable } from '../tokenizer/vocab-types.js';

/** A vocabulary and the file it came from. */
export interface CheckpointVocab extends VocabTable {
  source: 'tokenizer.model' | 'tokenizer.json';
}

/** Tokenizer files above this size are not a tokenizer (the real ones are 4 MB and 17 MB). */
const MAX_TOKENIZER_BYTES = 512 * 1024 * 1024;

async function readBounded(file: string): Promise<Buffer | undefined> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  return readRegularFile(file, 'a tokenizer file', convertFileError('BAD_TOKENIZER'), MAX_TOKENIZER_BYTES);
}

function parseJson(bytes: Buffer, file: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ConvertError('BAD_TOKENIZER', `not valid JSON (${(err as Error).message})`, file);
  }
}

/**
 * Added tokens beyond a SentencePiece model's pieces (PaliGemma's `<image>` is one), from
 * tokenizer_config.json's `added_tokens_decoder`: id → { content, special }.
 */
async function addedTokens(dir: string): Promise<Map<number, { content: string; special: boolean }>> {
  const file = path.join(dir, 'tokenizer_config.json');
  const bytes = await readBounded(file);
  const added = new Map<number, { content: string; special: boolean }>();
  if (!bytes) return added;
  const decoder = (parseJson(bytes, file) as Record<string, unknown> | null)?.added_tokens_decoder;
  if (typeof decoder !== 'object' || decoder === null) return added;
  for (const [key, value] of Object.entries(decoder)) {
    const id = Number(key);
    const v = value as { content?: unknown; special?: unknown } | null;
    if (!Number.isSafeInteger(id) || id < 0 || typeof v?.content !== 'string') {
      throw new ConvertError('BAD_TOKENIZER', `added_tokens_decoder["${key}"] is not an id with a string content`, file);
    }
    added.set(id, { content: v.content, special: v.special === true });
  }
  return added;
}

/** Appends added tokens past the model's pieces and pads to `rows`, following vocab.ts's conventions. */
function extend(vocab: VocabTable, added: Map<number, { content: string; special: boolean }>, rows: number, file: string): VocabTable {
  const tokens = [...vocab.tokens];
  const extra = [...added.keys()].filter((id) => id >= tokens.length).sort((a, b) => a - b);
  if (extra.length > 0 && extra.at(-1)! >= rows) {
    throw new ConvertError('BAD_TOKENIZER', `added token id ${extra.at(-1)} does not fit the embedding's ${rows} rows`, file);
  }
  const types = new Int32Array(rows).fill(TokenType.UNUSED);
  types.set(vocab.types);
  const scores = new Float32Array(rows);
  scores.set(vocab.scores);
  const end = Math.max(tokens.length, (extra.at(-1) ?? -1) + 1);
  for (let id = tokens.length; id < rows; id++) tokens.push(`[PAD${id}]`);
  for (const id of extra) {
    const { content, special } = added.get(id)!;
    tokens[id] = content;
    types[id] = PALIGEMMA_PIECE.test(content) || !special ? TokenType.USER_DEFINED : TokenType.CONTROL;
  }
  const seen = new Set<string>();
  for (let id = 0; id < end; id++) {
    if (seen.has(tokens[id]!)) throw new ConvertError('BAD_TOKENIZER', `piece ${JSON.stringify(tokens[id])} appears twice (id ${id})`, file);
    seen.add(tokens[id]!);
  }
  return { tokens, scores, types };
}

/**
 * Reads the checkpoint's vocabulary and pads it to `rows` (the embedding's row count). A vocabulary
 * larger than the embedding is an error: the model could emit ids it has no embedding for.
 */
export async function readCheckpointVocab(dir: string, rows: number): Promise<CheckpointVocab> {
  const modelPath = path.join(dir, 'tokenizer.model');
  const modelBytes = await readBounded(modelPath);
  if (modelBytes) {
    const vocab = readSentencePieceModel(modelBytes, modelPath);
    if (vocab.tokens.length > rows) {
      throw new ConvertError('BAD_TOKENIZER', `${vocab.tokens.length} pieces but the embedding has only ${rows} rows`, modelPath);
    }
    return { ...extend(vocab, await addedTokens(dir), rows, modelPath), source: 'tokenizer.model' };
  }
  const jsonPath = path.join(dir, 'tokenizer.json');
  const jsonBytes = await readBounded(jsonPath);
  if (!jsonBytes) {
    throw new ConvertError('MISSING_FILE', 'no tokenizer.model or tokenizer.json: the vocabulary cannot be converted', dir);
  }
  try {
    return { ...vocabFromTokenizerJson(parseJson(jsonBytes, jsonPath), { padTo: rows }), source: 'tokenizer.json' };
  } catch (err) {
    if (err instanceof TokenizerError) throw new ConvertError('BAD_TOKENIZER', err.message, jsonPath);
    throw err;
  }
}
