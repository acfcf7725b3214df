/** Quantized GGUF files: llama.cpp's block formats, its reference quantizers and its tensor-type mixes. */
export { quantizeModel } from './quantize.js';
export type { QuantizeOptions, QuantizeProgress, QuantizeResult, QuantizedTensor } from './quantize.js';
export { QuantizeError } from './errors.js';
export type { QuantizeErrorCode } from './errors.js';
export { QUANT_MIXES, planTextModel, planProjector, useMoreBits } from './plan.js';
export type { QuantMix, PlannedTensorInput } from './plan.js';
