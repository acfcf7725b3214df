/**
 * PaliGemma's tasks as structured results: prompt builders, output parsers and the segmentation mask
 * decoder. Everything here is independent of the model class; the model's task methods are thin
 * wrappers, wired as follows (`r` = the GenerationResult of `describe`):
 *
 *   caption(image, { lang, detail, ...gen }) → describe(image, { ...gen, prompt: captionPrompt({ lang, detail }) })
 *   ocr(image, gen)                          → describe(image, { ...gen, prompt: ocrPrompt() })
 *   answer(image, question, { lang, ...gen })→ describe(image, { ...gen, prompt: answerPrompt(question, lang) })
 *     These three return `r` unchanged (r.text is the caption / text / answer).
 *   detect(image, labels, gen)               → build the prompt with detectPrompt(labels) BEFORE any work (it
 *     throws TaskError on bad labels), run describe, then return
 *     parseDetections(r.text, { width, height }).detections — the array the issue asks for (the parse's
 *     `skipped` list can be exposed too if wanted; parsing never throws on model text).
 *   segment(image, label, gen)               → if no decoder was loaded, throw missingDecoderError() before any
 *     work; else prompt = segmentPrompt(label), run describe, then
 *     (await decodeSegmentation(r.text, { width, height }, decoder)).segments: [{ label, box, codes, mask }].
 *
 * `{ width, height }` is the ORIGINAL image size after EXIF orientation (preprocess() returns it). For a
 * `{ pixelValues }` input there is no original image: use the model's input size (imageSize × imageSize).
 * Masks need whole pixels, which both are.
 *
 * Loading: loadModel({ ..., segmentation: 'vae-oid.npz' | 'decoder.gguf' }) should call
 * `await SegmentationDecoder.load(path, { simd })` once at load time (it validates every tensor, so a
 * wrong file fails at load, with TaskError BAD_DECODER, NpzError or GGUFError). The decoder runs on the
 * native GEMM kernels (about 60 MFLOP per mask) and is safe to call inside the model's call queue.
 * `paligemma convert` can turn vae-oid.npz into a GGUF with
 * `writeGGUF(out, segmentationDecoderGGUF(await readNpz('vae-oid.npz')))` (layout in docs/FORMAT.md).
 */
export { TaskError, missingDecoderError } from './errors.js';
export type { TaskErrorCode } from './errors.js';
export { captionPrompt, ocrPrompt, answerPrompt, detectPrompt, segmentPrompt } from './prompts.js';
export type { CaptionDetail, CaptionOptions } from './prompts.js';
export { parseDetections, parseSegmentation } from './parse.js';
export type { Box, Detection, DetectionParse, ImageSize, SegmentationParse, SegmentedObject, SkippedObject } from './parse.js';
export {
  SegmentationDecoder,
  decodeSegmentation,
  maskForBox,
  segmentationDecoderGGUF,
  segmentationTensorNames,
  MASK_SIZE,
  SEGMENTATION_GGUF_ARCH,
  SEGMENTATION_TENSORS,
} from './segmentation.js';
export type { DecodedMask, SegmentMask, SegmentationDecoderOptions, SegmentationResult } from './segmentation.js';
export { readNpz, parseNpz, NpzError } from './npz.js';
export type { NpyArray, NpzErrorCode, NpzOptions } from './npz.js';
