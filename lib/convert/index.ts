/** Hugging Face PaliGemma checkpoint → GGUF: the converter and the readers it is built from. */
export { convertCheckpoint, OUT_TYPES, PALIGEMMA_CONTEXT_LENGTH } from './convert.js';
export type { ConvertOptions, ConvertProgress, ConvertResult, OutType } from './convert.js';
export { ConvertError, SafetensorsError } from './errors.js';
export type { ConvertErrorCode, SafetensorsErrorCode } from './errors.js';
export { openCheckpoint, readSafetensorsHeader, readTensorChunks, readTensorBytes } from './safetensors.js';
export type { SafetensorsCheckpoint, SafetensorsDType, SafetensorsFile, SafetensorsTensor } from './safetensors.js';
export { readConfig, parseConfig } from './config.js';
export type { PaliGemmaConfig, GemmaTextConfig, SiglipVisionConfig } from './config.js';
export { readSentencePieceModel } from './sentencepiece-model.js';
