/**
 * Option names checked against what a function or command accepts. A misspelt key, or one carried
 * over from another library (node-llama-cpp's `modelPath`, llama.cpp's `--mmproj`, Ollama's
 * `num_predict`), fails with a message naming it and what was probably meant, instead of being
 * silently ignored. The API and the CLI share the matching; each has its own table of foreign names.
 */
import type { DescribeItem, DescribeManyOptions, DescribeOptions, EvaluateInput, GenerateInput, LoadModelOptions, TaskOptions } from './model/types.js';
import type { SamplingOptions } from './model/sampling.js';
import type { PullOptions } from './pull/types.js';
import type { CaptionOptions } from './tasks/index.js';
import { PaliGemmaError } from './errors.js';

/** What a name from another library or tool is called here, or why there is nothing to set. */
export interface ForeignName {
  /** Our name for it. */
  use?: string;
  /** Where the name comes from, e.g. `node-llama-cpp`. */
  from?: string;
  /** Why it has no counterpart, when it has none. */
  note?: string;
}

const CPU_ONLY: ForeignName = { note: 'paligemma runs on the CPU only, there are no GPU layers to set' };
const FIXED_CONTEXT: ForeignName = { note: "the context length is the model's own (2048 tokens for PaliGemma), there is nothing to set" };

/** Foreign option names of the library API, keyed by their {@link normalizeName normalized} form. */
export const API_FOREIGN_NAMES: Readonly<Record<string, ForeignName>> = {
  modelpath: { use: 'model', from: 'node-llama-cpp' },
  mmproj: { use: 'projector', from: 'llama.cpp' },
  mmprojpath: { use: 'projector', from: 'llama.cpp' },
  projectorpath: { use: 'projector' },
  clipmodelpath: { use: 'projector', from: 'llama.cpp' },
  nthreads: { use: 'threads', from: 'llama.cpp' },
  numthread: { use: 'threads', from: 'Ollama' },
  usemlock: { use: 'lockMemory', from: 'llama.cpp' },
  gpulayers: CPU_ONLY,
  ngpulayers: CPU_ONLY,
  numgpu: CPU_ONLY,
  contextsize: FIXED_CONTEXT,
  nctx: FIXED_CONTEXT,
  numctx: FIXED_CONTEXT,
  npredict: { use: 'maxTokens', from: 'llama.cpp' },
  numpredict: { use: 'maxTokens', from: 'Ollama' },
  maxnewtokens: { use: 'maxTokens', from: 'transformers' },
  temp: { use: 'temperature', from: 'llama.cpp' },
  ontextchunk: { use: 'onToken', from: 'node-llama-cpp' },
  images: { note: 'the image is the first argument: describe(image, { prompt })' },
  hftoken: { use: 'token' },
  modelsdir: { use: 'ollamaModelsDir' },
};

/** Foreign flags of the command line, keyed by their normalized form (without dashes). */
export const CLI_FOREIGN_NAMES: Readonly<Record<string, ForeignName>> = {
  mmproj: { use: 'projector', from: 'llama.cpp' },
  modelpath: { use: 'model' },
  t: { use: 'threads', from: 'llama.cpp' },
  nthreads: { use: 'threads' },
  n: { use: 'max-tokens', from: 'llama.cpp' },
  npredict: { use: 'max-tokens', from: 'llama.cpp' },
  temp: { use: 'temperature', from: 'llama.cpp' },
  ngl: CPU_ONLY,
  ngpulayers: CPU_ONLY,
  gpulayers: CPU_ONLY,
  c: FIXED_CONTEXT,
  ctxsize: FIXED_CONTEXT,
  image: { note: 'images are positional arguments: paligemma caption photo.jpg' },
  outfile: { use: 'out', from: "llama.cpp's convert_hf_to_gguf.py (here it is a directory)" },
};

/** Case and `-`/`_` do not tell names apart: `max_tokens`, `maxTokens` and `max-tokens` are one name. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, '');
}

/** Edit distance with adjacent transpositions (optimal string alignment), so `lables` is 1 from `labels`. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * What `name` probably meant among `known`: the same name spelt with other case or separators,
 * a foreign name from `foreign`, or a near-miss typo. Undefined when nothing is close.
 */
export function suggestName(name: string, known: readonly string[], foreign: Readonly<Record<string, ForeignName>> = {}): ForeignName | undefined {
  const n = normalizeName(name);
  const same = known.find((k) => normalizeName(k) === n);
  if (same !== undefined) return { use: same };
  const alias = Object.hasOwn(foreign, n) ? foreign[n] : undefined;
  if (alias?.use !== undefined && known.includes(alias.use)) return alias;
  if (alias?.note !== undefined) return alias;
  // Short names are too close to everything to guess from.
  const limit = n.length <= 2 ? 0 : n.length <= 5 ? 1 : 2;
  let best: { name: string; distance: number } | undefined;
  for (const k of known) {
    const distance = editDistance(n, normalizeName(k));
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { name: k, distance };
  }
  return best && { use: best.name };
}

/** The parenthesised advice after "unknown option X", with names written by `show` (quoted, or as --flags). */
export function describeSuggestion(name: string, s: ForeignName | undefined, show: (name: string) => string): string {
  if (s === undefined) return '';
  if (s.use === undefined) return ` (${s.note})`;
  return s.from ? ` (${show(name)} is ${s.from}'s name: use ${show(s.use)})` : ` (did you mean ${show(s.use)}?)`;
}

/** An options object has a key the function does not know. */
export class OptionError extends PaliGemmaError<'UNKNOWN_OPTION'> {
  override name = 'OptionError';
  constructor(
    message: string,
    /** The unknown keys. */
    readonly options: string[],
  ) {
    super('UNKNOWN_OPTION', message);
  }
}

type Keys<T> = Record<keyof T, true>;

// Records over keyof the option types: adding an option to one of those interfaces without listing it
// here is a type error, so these lists cannot fall behind.
const sampling: Keys<SamplingOptions> = { temperature: true, topK: true, topP: true, seed: true };
const task: Keys<TaskOptions> = { maxTokens: true, ...sampling, signal: true, onToken: true };
const describe: Keys<DescribeOptions> = { prompt: true, ...task };
const describeItem: Keys<DescribeItem> = { image: true, prompt: true, maxTokens: true, ...sampling, onToken: true };
const describeMany: Keys<DescribeManyOptions> = { concurrency: true, signal: true };
const caption: Keys<TaskOptions & CaptionOptions> = { ...task, lang: true, detail: true };
const answer: Keys<TaskOptions & { lang?: string }> = { ...task, lang: true };
const generate: Keys<GenerateInput> = { tokens: true, ...task };
const evaluate: Keys<EvaluateInput> = { image: true, pixelValues: true, prompt: true, topK: true };
const loadModel: Keys<LoadModelOptions> = {
  model: true, projector: true, ollama: true, ollamaModelsDir: true, requireProjector: true, threads: true, simd: true,
  lockMemory: true, maxPixels: true, segmentation: true, imageCacheBytes: true, maxSequences: true, prefillChunkLayers: true,
  onProgress: true,
};

const pullModel: Keys<PullOptions> = {
  onProgress: true, signal: true, retries: true, retryDelayMs: true, stallTimeoutMs: true, ollamaModelsDir: true, ollamaRegistry: true,
  requireProjector: true, huggingFaceEndpoint: true, token: true, outDir: true, outType: true, keepDownload: true,
};

/** The keys each public entry point accepts. */
export const OPTION_KEYS = {
  loadModel: Object.keys(loadModel),
  describe: Object.keys(describe),
  stream: Object.keys(describe),
  describeMany: Object.keys(describeMany),
  'describeMany item': Object.keys(describeItem),
  caption: Object.keys(caption),
  ocr: Object.keys(task),
  answer: Object.keys(answer),
  detect: Object.keys(task),
  segment: Object.keys(task),
  generate: Object.keys(generate),
  evaluate: Object.keys(evaluate),
  pullModel: Object.keys(pullModel),
} as const satisfies Record<string, readonly string[]>;

/** The public entry points whose options are checked. */
export type OptionsOf = keyof typeof OPTION_KEYS;

/** Marks option objects a task method already checked, so `describe` does not refuse the task's own keys (`lang`…). */
const CHECKED: unique symbol = Symbol('paligemma.checkedOptions');

/**
 * The {@link OptionError} for the keys of `options` (with a defined value) that `where` does not
 * accept, naming each and what was probably meant; undefined when all are known, when the options
 * were already checked by a task method, or when they are not an object (left to the caller's own
 * type checks).
 */
export function optionError(options: unknown, where: OptionsOf): OptionError | undefined {
  if (typeof options !== 'object' || options === null || (options as Record<symbol, unknown>)[CHECKED]) return undefined;
  const known: readonly string[] = OPTION_KEYS[where];
  const unknown = Object.keys(options).filter((k) => !known.includes(k) && (options as Record<string, unknown>)[k] !== undefined);
  if (unknown.length === 0) return undefined;
  const quote = (name: string) => `'${name}'`;
  const each = unknown.map((k) => `${quote(k)}${describeSuggestion(k, suggestName(k, known, API_FOREIGN_NAMES), quote)}`);
  return new OptionError(`${where}: unknown option${unknown.length > 1 ? 's' : ''} ${each.join(', ')}; the options are ${known.join(', ')}`, unknown);
}

/**
 * Throws {@link optionError}'s error, if any. Returns the options marked as checked: spreading the
 * result (`{ ...options, prompt }`) carries the mark on, so `describe` does not refuse the keys a
 * task method has already accepted (`lang`, `detail`).
 */
export function checkOptions<T>(options: T, where: OptionsOf): T {
  const err = optionError(options, where);
  if (err) throw err;
  return typeof options === 'object' && options !== null ? { ...options, [CHECKED]: true } : options;
}
