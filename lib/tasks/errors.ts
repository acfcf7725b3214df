import { PaliGemmaError } from '../errors.js';

/** Why a task call was refused. */
export type TaskErrorCode =
  /** A label is empty, has a line break, a `;` (detect), or a `<loc…>`/`<seg…>` token in it. */
  | 'BAD_LABEL'
  /** A language code is not a short code such as `en`, `de`, `zh` or `pt-BR`. */
  | 'BAD_LANGUAGE'
  /** A question is empty or has a line break. */
  | 'BAD_QUESTION'
  /** Any other option or argument of the wrong type or range (detail level, image size, box…). */
  | 'BAD_OPTION'
  /** `segment` was called but no segmentation decoder (vae-oid.npz) was given to loadModel. */
  | 'NO_SEGMENTATION_DECODER'
  /** The segmentation decoder file lacks a tensor, or its shapes do not fit together. */
  | 'BAD_DECODER'
  /** The codes given to the decoder are not 16 integers inside the codebook. */
  | 'BAD_CODES';

/** A typed error from the task helpers, with a message that says what to change. */
export class TaskError extends PaliGemmaError<TaskErrorCode> {
  override name = 'TaskError';
}

/**
 * The error `segment` throws when no decoder was loaded: it names the file and how to pass it.
 * The model class throws this (it knows whether a decoder was given).
 */
export function missingDecoderError(): TaskError {
  return new TaskError(
    'NO_SEGMENTATION_DECODER',
    'segmentation needs the mask decoder weights, which are a separate file: download vae-oid.npz from ' +
      "big_vision's PaliGemma assets (gs://big_vision/paligemma/vae-oid.npz, a public bucket: " +
      "https://storage.googleapis.com/big_vision/paligemma/vae-oid.npz) and pass it as loadModel({ ..., segmentation: 'vae-oid.npz' }) " +
      '(or a GGUF made from it with `paligemma convert`)',
  );
}
