/**
 * How the CLI reports a failure: the error's message (the library's typed errors already say what is
 * wrong), then a hint on what to do for the known error types. Stack traces only with
 * PALIGEMMA_DEBUG=1. Errors are matched by their `name` so that this module imports nothing heavy
 * (in particular not the native addon, which SimdError lives next to). "This looks like a bug" is
 * kept for errors nobody explained: not the package's typed errors, nor the OS's refusals.
 */
import { isPaliGemmaError } from '../errors.js';
import { UsageError } from './args.js';

/** Exit codes a shell user can act on (re-exported by main.ts). */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, INTERRUPTED: 130 } as const;

/** A failure the CLI itself finds (an unreadable image, an output path it cannot write…), with a hint. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

type Hint = (code: string | undefined, command: string) => string | undefined;

const FILE_HINT = '`paligemma info FILE` shows what a GGUF file is and whether it is usable';

const HINTS: Record<string, Hint> = {
  ModelFilesError: (code, command) =>
    code === 'NO_PROJECTOR' ? 'pass the mmproj GGUF with --projector FILE'
    : code === 'BAD_OPTIONS' ? 'give either --model FILE (with --projector FILE) or --ollama NAME'
    : code === 'MODEL_FILE_CHANGED' ? 'a model file was rewritten or cut short while in use; run the command again once it is complete'
    : code === 'LOCK_FAILED' ? 'raise the locked-memory limit (`ulimit -l`), or load without locking the weights'
    : `--model takes the text GGUF and --projector the mmproj GGUF of the same model${command === 'info' ? '' : `; ${FILE_HINT}`}`,
  GGUFError: (code, command) =>
    code === 'IO' || code === 'NOT_A_FILE' ? 'check the path and that the file is readable'
    : `the file is not a GGUF file or is damaged (a cut-short download?); download or convert it again${command === 'info' ? '' : `; ${FILE_HINT}`}`,
  OllamaError: (code) =>
    code === 'BAD_NAME' ? 'Ollama names look like NAME, NAME:TAG or NAMESPACE/NAME:TAG'
    : code === 'NOT_FOUND' ? 'run `ollama pull NAME` first (`ollama list` shows what is installed); if the store is elsewhere, pass --ollama-models DIR or set OLLAMA_MODELS'
    : code === 'NO_PROJECTOR' ? 'this Ollama model has no vision projector; pass one with --projector FILE'
    : 'the Ollama store looks damaged; `ollama pull NAME` again',
  ImageError: (code) =>
    code === 'TOO_LARGE' ? 'raise the limit with --max-pixels N, or shrink the image'
    : 'supported formats: JPEG, PNG, WebP, GIF (first frame), TIFF, AVIF',
  TaskError: (code) =>
    code === 'NO_SEGMENTATION_DECODER' ? 'then run again with --segmentation vae-oid.npz'
    : code === 'BAD_LABEL' ? 'labels are separated by commas in --labels; they may not contain `;` or line breaks'
    : code === 'BAD_LANGUAGE' ? '--lang takes a language code such as en, de, fr, zh or pt-BR'
    : code === 'BAD_DECODER' || code === 'BAD_CODES' ? '--segmentation takes vae-oid.npz from big_vision, or the GGUF `paligemma convert` makes of it'
    : undefined,
  NpzError: () => '--segmentation takes vae-oid.npz from big_vision, or the GGUF `paligemma convert` makes of it; download it again',
  PaliGemmaError: (code) =>
    code === 'CONTEXT_OVERFLOW' ? 'lower --max-tokens or shorten the prompt'
    : code === 'NO_VISION' ? 'pass the mmproj GGUF with --projector FILE'
    : code === 'OUT_OF_MEMORY' ? 'free some memory, or ask for less at once (fewer images or tokens per call)'
    : code === 'THREAD_LIMIT' ? 'lower --threads, or raise the limit on threads (`ulimit -u`, a container\'s pids limit)'
    : undefined,
  SimdError: () => '`paligemma features` lists the kernel sets this CPU can run',
  NativeAddonError: () => undefined, // its message already says how to fix it
  ConvertError: (_code, command) =>
    command === 'pull' ? 'the downloaded checkpoint could not be converted; `paligemma pull hf:… --keep-download` keeps it for a look'
    : '<hf-dir> must hold a PaliGemma checkpoint in Hugging Face layout (config.json, *.safetensors, tokenizer)',
  PullError: (code) =>
    code === 'NETWORK' || code === 'CORRUPT' || code === 'HTTP' ? 'run the same command again: the download resumes where it stopped'
    : code === 'NO_SPACE' ? 'free some space, or download elsewhere with --out DIR (Hugging Face) or --ollama-models DIR (Ollama)'
    : code === 'BAD_NAME' ? 'Ollama names look like NAMESPACE/MODEL[:TAG]; Hugging Face ones like hf:OWNER/REPO[@REVISION]'
    : undefined,
  QuantizeError: (code) => code === 'UNSUPPORTED_TENSOR_TYPE' ? 'quantize the F16 (or BF16/F32) file, not an already quantized one' : code === 'UNSUPPORTED_MODEL' ? '`paligemma quantize` takes the text GGUF or the projector (mmproj) GGUF of PaliGemma' : undefined,
  SafetensorsError: () => 'a .safetensors file is damaged or incomplete; download the checkpoint again',
  TokenizerError: () => 'the vocabulary in the text GGUF is damaged; convert or download the model again',
};

/** Whether `err` is the OS refusing something (Node's system errors: ENOENT, EACCES, ENOSPC…), not a bug. */
function isSystemError(err: Error): boolean {
  const { code, syscall } = err as { code?: unknown; syscall?: unknown };
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) && typeof syscall === 'string';
}

/** Whether `err` is the rejection of an aborted call (Ctrl-C). */
function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

/**
 * Prints `err` for a shell user on stderr and returns the exit code: 2 for bad usage (with the
 * command's usage), 130 when interrupted, 1 otherwise.
 */
export function reportError(command: string, err: unknown, usage?: string): number {
  const prefix = `paligemma ${command}`;
  if (err instanceof UsageError) {
    const synopsis = usage?.split('\n')[0];
    console.error(`${prefix}: ${err.message}`);
    if (synopsis) console.error(`usage: ${synopsis}\n(\`${prefix} --help\` lists every option)`);
    return EXIT.USAGE;
  }
  if (isAbort(err)) {
    console.error(`${prefix}: interrupted`);
    return EXIT.INTERRUPTED;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const hinted = Object.hasOwn(HINTS, e.name);
  const known = e instanceof CliError || hinted || isPaliGemmaError(e) || isSystemError(e);
  console.error(`${prefix}: ${e.message}`);
  const hint = e instanceof CliError ? e.hint : hinted ? HINTS[e.name]!((e as { code?: string }).code, command.split(' ')[0]!) : undefined;
  if (hint) console.error(`hint: ${hint}`);
  if (process.env.PALIGEMMA_DEBUG === '1') console.error(e.stack ?? '');
  else if (!known) console.error('hint: this looks like a bug; run again with PALIGEMMA_DEBUG=1 for details and report it');
  return EXIT.FAILURE;
}
