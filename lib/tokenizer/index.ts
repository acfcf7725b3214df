export { Tokenizer } from './tokenizer.js';
