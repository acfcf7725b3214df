/** Image decoding (sharp) and PaliGemma preprocessing (native PIL-compatible resize, normalisation). */
export { decodeImage, toRgb, DEFAULT_MAX_PIXELS } from './decode.js';
export type { DecodeOptions, RgbImage } from './decode.js';
export { MAX_IMAGE_BYTES } from './input.js';
export type { ImageInput, RawPixels } from './input.js';
export { ImageError } from './errors.js';
export type { ImageErrorCode } from './errors.js';
export { resizeBicubic } from './resize.js';
export type { Pixels } from './resize.js';
export { preprocess, normalize, MAX_IMAGE_SIZE } from './preprocess.js';
export type { PreprocessOptions, PreprocessedImage } from './preprocess.js';
