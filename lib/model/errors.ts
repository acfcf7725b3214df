/** Why a model call was refused. */
export type PaliGemmaErrorCode =
  | 'DISPOSED' // the model was disposed before or during the call
  | 'CONTEXT_OVERFLOW' // prompt + maxTokens do not fit the context length
  | 'NO_VISION' // an image was given but no projector was loaded
  | 'BAD_ARGUMENT'; // an option or argument has the wrong type or range

/** A typed error from the model API, with a message that says what to change. */
export class PaliGemmaError extends Error {
  override name = 'PaliGemmaError';
  constructor(
    readonly code: PaliGemmaErrorCode,
    message: string,
  ) {
    super(message);
  }
}
