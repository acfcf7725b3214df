export { Tokenizer, MAX_PIECE_LENGTH, MAX_MATCHED_UNITS } from './tokenizer.js';
export type { TokenizerConfig, EncodeOptions, DecodeOptions, StreamDecoder } from './tokenizer.js';
export { TokenType, TokenizerError, PALIGEMMA_PIECE, paligemmaPieces } from './vocab-types.js';
export type { TokenTypeId, VocabTable, TokenizerErrorCode } from './vocab-types.js';
