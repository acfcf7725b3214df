export { Tokenizer } from './tokenizer.js';
export type { TokenizerConfig, EncodeOptions, DecodeOptions, StreamDecoder } from './tokenizer.js';
export { TokenType, TokenizerError, PALIGEMMA_PIECE, paligemmaPieces } from './vocab-types.js';
export type { TokenTypeId, VocabTable, TokenizerErrorCode } from './vocab-types.js';
