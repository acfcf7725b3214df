import { PaliGemmaError } from '../errors.js';
/** Why a pull failed. */
export type PullErrorCode =
  /** The name is neither an Ollama name nor `hf:<owner>/<repo>[@revision]`. */
  | 'BAD_NAME'
  /** An option has the wrong type or value. */
  | 'BAD_OPTION'
  /** The registry has no such model, tag, repository, revision or file. */
  | 'NOT_FOUND'
  /** The server wants credentials (HTTP 401): a gated or private repository without `HF_TOKEN`. */
  | 'UNAUTHORIZED'
  /** The credentials were refused (HTTP 403): e.g. the model's license is not accepted for this token. */
  | 'FORBIDDEN'
  /** Any other HTTP status the download cannot go on with. */
  | 'HTTP'
  /** The connection failed, broke off or stalled, more often than the retries allow. */
  | 'NETWORK'
  /** A downloaded file does not have the size or sha256 digest it must have (it is deleted). */
  | 'CORRUPT'
  /** The registry's answer (manifest, file listing) is not what the protocol says. */
  | 'BAD_RESPONSE'
  /** The Ollama model has no GGUF model layer. */
  | 'NO_MODEL_LAYER'
  /** The Ollama model has no projector layer, so it cannot see images. */
  | 'NO_PROJECTOR'
  /** The Hugging Face repository is not a PaliGemma checkpoint in safetensors. */
  | 'NOT_PALIGEMMA'
  /** Not enough free disk space for the download. */
  | 'NO_SPACE'
  /** Writing the files failed (permissions, disk). */
  | 'IO';

/** A typed error saying what went wrong with a pull and what to do about it. */
export class PullError extends PaliGemmaError<PullErrorCode> {
  override name = 'PullError';
  /** The URL concerned, when there is one (without credentials: they go in headers, never in URLs). */
  readonly url: string | undefined;
  /** The HTTP status, for HTTP errors. */
  readonly status: number | undefined;

  constructor(
    code: PullErrorCode,
    message: string,
    options?: { cause?: unknown; url?: string; status?: number },
  ) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.url = options?.url;
    this.status = options?.status;
  }
}
