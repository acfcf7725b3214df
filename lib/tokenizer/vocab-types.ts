/**
 * The vocabulary table shared by the tokenizer, the converter and the GGUF `tokenizer.ggml.*` keys.
 */
import { PaliGemmaError } from '../errors.js';

/** SentencePiece piece types, with the numeric values GGUF's `tokenizer.ggml.token_type` stores. */
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

export type TokenTypeId = (typeof TokenType)[keyof typeof TokenType];

/** A SentencePiece-style vocabulary: piece text, merge score and type per token id. */
export interface VocabTable {
  /** Piece text per id; spaces appear as `▁`, byte pieces as `<0xNN>`. */
  tokens: string[];
  /** BPE score per id: of two mergeable adjacent pairs, the one whose merged piece scores higher merges first. */
  scores: Float32Array;
  /** `TokenType` value per id. */
  types: Int32Array;
}

/** Why a tokenizer could not be built, or why it refused its input. */
export type TokenizerErrorCode =
  /** A required `tokenizer.ggml.*` key (or tokenizer.json field) is absent. */
  | 'MISSING_KEY'
  /** A key or field has the wrong type, or tables have different lengths. */
  | 'BAD_VOCAB'
  /** The file's tokenizer model is not SentencePiece-style (`tokenizer.ggml.model` other than `llama`). */
  | 'UNSUPPORTED_MODEL'
  /** An id outside the vocabulary was given to `decode` / `tokenToPiece`, or a special id is out of range. */
  | 'BAD_ID'
  /** The text given to `encode` is not a string, or an option of `encode` is out of range. */
  | 'BAD_INPUT'
  /** A piece is longer than the tokenizer accepts, or the pieces matched whole from text are too many in all. */
  | 'LIMIT_EXCEEDED'
  /** The text needs more tokens than `encode`'s `maxTokens` allows. */
  | 'TOO_MANY_TOKENS';

/** A typed error for a bad vocabulary or bad tokenizer input. */
export class TokenizerError extends PaliGemmaError<TokenizerErrorCode> {
  override name = 'TokenizerError';
}

/** The PaliGemma additions, always matched whole from text whatever type a file gives them. */
export const PALIGEMMA_PIECE = /^(?:<loc\d{4}>|<seg\d{3}>|<image>)$/;

/** The PaliGemma pieces in vocabulary order: `<loc0000>`..`<loc1023>`, `<seg000>`..`<seg127>`, `<image>`. */
export function paligemmaPieces(): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < 1024; i++) pieces.push(`<loc${String(i).padStart(4, '0')}>`);
  for (let i = 0; i < 128; i++) pieces.push(`<seg${String(i).padStart(3, '0')}>`);
  pieces.push('<image>');
  return pieces;
}
