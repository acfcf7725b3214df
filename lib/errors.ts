/**
 * The base of every error this package throws on purpose. Each area has its own subclass (GGUFError,
 * ModelFilesError, ImageError, …) with its own `name` and its own union of `code`s; the model API
 * throws PaliGemmaError itself with the codes below. `err instanceof PaliGemmaError` (or
 * {@link isPaliGemmaError}) tells an expected, explained failure from a bug or an error of the host.
 */

/** Codes of the errors the model API throws as PaliGemmaError itself. */
export type PaliGemmaErrorCode =
  | 'DISPOSED' // the model was disposed before or during the call
  | 'CONTEXT_OVERFLOW' // prompt + maxTokens do not fit the context length
  | 'NO_VISION' // an image was given but no projector was loaded
  | 'BAD_ARGUMENT' // an option or argument has the wrong type or range
  | 'OUT_OF_MEMORY' // a buffer a call needs exceeds the memory there is (the message names it and its size)
  | 'THREAD_LIMIT'; // the OS refused the model's threads (a limit on threads or address space): lower `threads`

/** Marks package errors across copies of the package (two versions installed side by side). */
const BRAND = Symbol.for('paligemma.error');

/** A typed error with a stable `code` to branch on and a message that says what to change. */
export class PaliGemmaError<Code extends string = PaliGemmaErrorCode> extends Error {
  override name = 'PaliGemmaError';
  readonly code: Code;

  constructor(code: Code, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }

  /** @internal */
  get [BRAND](): true {
    return true;
  }
}

/**
 * Whether `err` is an error this package threw on purpose (any subclass of PaliGemmaError), also
 * when it comes from another copy of the package.
 */
export function isPaliGemmaError(err: unknown): err is PaliGemmaError<string> {
  return err instanceof PaliGemmaError || (typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[BRAND] === true);
}
