/** Image decoding (sharp) and PaliGemma preprocessing (native PIL-compatible resize, normalisation). */
export { decodeImage, toRgb, DEFAULT_MAX_PIXELS } from './decode.js';
export type { DecodeOptions, ImageInput, RawPixels, RgbImage } from './decode.js';
export { ImageError } from './errors.js';
export type { ImageErrorCode } from './errors.js';
export { resizeBicubic } from './resize.js';
export type { Pixels } from './resize.js';
export { preprocess, normalize, MAX_IMAGE_SIZE } from './preprocess.js';
export type { PreprocessOptions, PreprocessedImage } from './preprocess.js';
