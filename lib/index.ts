/**
 * paligemma — run Google's PaliGemma vision-language model locally from GGUF files.
 * This module is the public API and nothing else.
 */
export { readGGUF, writeGGUF, GGUFError } from './gguf/index.js';
export type * from './gguf/index.js';
export { Tokenizer } from './tokenizer/index.js';
export type * from './tokenizer/index.js';
export { cpuFeatures, simdVariant, simdVariants, SimdError } from './native.js';
export type { CpuFeatures, SimdVariantName, SimdVariantInfo } from './native.js';
