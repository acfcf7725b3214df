/**
 * Getting a model: `pullModel('jyan1/paligemma-mix-224')` from the Ollama registry into the Ollama
 * store, or `pullModel('hf:google/paligemma-3b-mix-224')` from the Hugging Face Hub, converted to
 * GGUF. Either way the result names the two files loadModel takes.
 */
import { checkOptions } from '../options.js';
import { PullError } from './errors.js';
import { isHuggingFaceName, pullFromHuggingFace } from './huggingface.js';
import { pullFromOllama } from './ollama.js';
import type { PullOptions, PullResult } from './types.js';

export { PullError } from './errors.js';
export type { PullErrorCode } from './errors.js';
export { defaultModelsDir } from './types.js';
export type { PullOptions, PullProgress, PullResult } from './types.js';
export { isHuggingFaceName } from './huggingface.js';

/**
 * Downloads a model and returns its files: `name` is an Ollama name (`[host/][namespace/]model[:tag]`,
 * pulled into the Ollama store, where Ollama sees it too) or `hf:<owner>/<repo>[@revision]` (the
 * checkpoint is downloaded and converted to `<outDir>/<repo>-f16.gguf` + `mmproj-<repo>-f16.gguf`).
 * Downloads resume where an interrupted one stopped, and every file is checked against its size and
 * sha256 before use. Rejects with a {@link PullError} (or a ConvertError / SafetensorsError when a
 * downloaded checkpoint cannot be converted), or with the signal's reason when aborted.
 */
export async function pullModel(name: string, options: PullOptions = {}): Promise<PullResult> {
  if (typeof name !== 'string' || name.length === 0) throw new PullError('BAD_NAME', 'pullModel(name): name must be a model name such as jyan1/paligemma-mix-224 or hf:google/paligemma-3b-mix-224');
  if (typeof options !== 'object' || options === null) throw new PullError('BAD_OPTION', 'pullModel(name, options): options must be an object');
  checkOptions(options, 'pullModel');
  options.signal?.throwIfAborted();
  return isHuggingFaceName(name) ? pullFromHuggingFace(name, options) : pullFromOllama(name, options);
}
