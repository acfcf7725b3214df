/**
 * Interop of `paligemma quantize` with llama.cpp (slow; not part of `npm test`):
 *
 *   node --import tsx bench/quant-interop.ts [--types q8_0,q4_k_m] [--steps 16] [--threads 2]
 *
 * 1. Makes the bench's full-size random-weight text GGUF (bench/model-files.ts, ~5 GB, cached) and
 *    quantizes it with each type into the cache (once; timed).
 * 2. Loads the F16 file and each quantized file in llama.cpp (node-llama-cpp 3.21.1, installed into the
 *    cache on first use by bench/llama.ts) and decodes `--steps` tokens greedily
 *    from a fixed id sequence, checking that every probability llama.cpp returns is finite.
 * 3. Writes llama.cpp's greedy tokens and first-step top-5 to bench/quant-llama-tokens.json, for our
 *    quantized kernels to be compared with (issue 13), and prints a summary.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { QUANT_MIXES, type QuantMix } from '../lib/quant/plan.js';
import { promptTokens } from './child.js';
import { ensureNodeLlamaCpp, NODE_LLAMA_CPP_VERSION } from './llama.js';
import { benchCacheDir, ensureModelFiles, ensureQuantizedFile, type QuantizedFile } from './model-files.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const RESULT_FILE = path.join(here, 'quant-llama-tokens.json');
/** The fixed prompt: `<bos>` and 15 ids drawn with the bench's seed. */
const PROMPT = promptTokens(16);

const log = (line: string) => console.error(line);

function parseOptions(argv: string[]): { types: QuantMix[]; steps: number; threads: number } {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const types = (get('types') ?? 'q8_0,q4_k_m').split(',') as QuantMix[];
  for (const t of types) if (!QUANT_MIXES.includes(t)) throw new Error(`--types: unknown type ${t} (${QUANT_MIXES.join(', ')})`);
  return { types, steps: Number(get('steps') ?? 16), threads: Number(get('threads') ?? 2) };
}

/** The part of node-llama-cpp's API used here (no types: it is not a dependency). */
interface LlamaSequence {
  evaluateWithMetadata(tokens: number[], metadata: { probabilities: true }, options: { temperature: number; yieldEogToken: boolean }):
    AsyncGenerator<{ token: number; probabilities: Map<number, number> }>;
}
interface Llama {
  loadModel(options: { modelPath: string; gpuLayers: number }): Promise<{
    createContext(options: { contextSize: number; threads: number }): Promise<{ getSequence(): LlamaSequence; dispose(): Promise<void> }>;
    dispose(): Promise<void>;
  }>;
  dispose(): Promise<void>;
}

interface GreedyRun {
  file: string;
  tokens: number[];
  /** Top 5 (token, probability) of the first step. */
  firstStepTop5: [number, number][];
  finite: boolean;
  loadSeconds: number;
}

async function greedy(llama: Llama, file: string, steps: number, threads: number): Promise<GreedyRun> {
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const loadSeconds = (performance.now() - t0) / 1000;
  const context = await model.createContext({ contextSize: 512, threads });
  const tokens: number[] = [];
  let finite = true;
  let firstStepTop5: [number, number][] = [];
  for await (const out of context.getSequence().evaluateWithMetadata(PROMPT, { probabilities: true }, { temperature: 0, yieldEogToken: true })) {
    const probs = [...out.probabilities.entries()];
    finite &&= probs.length > 0 && probs.every(([, p]) => Number.isFinite(p));
    if (tokens.length === 0) firstStepTop5 = probs.sort((a, b) => b[1] - a[1]).slice(0, 5);
    tokens.push(out.token);
    if (tokens.length >= steps) break;
  }
  await context.dispose();
  await model.dispose();
  return { file: path.basename(file), tokens, firstStepTop5, finite, loadSeconds };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const cache = benchCacheDir();
  const files = await ensureModelFiles(cache, { check: false, log });
  const llamaPackage = await ensureNodeLlamaCpp(cache, log);
  if ('error' in llamaPackage) throw new Error(llamaPackage.error);
  const { moduleDir } = llamaPackage;
  const made: Record<string, QuantizedFile> = {};
  for (const type of options.types) made[type] = await ensureQuantizedFile(files.text, type, log);

  const { getLlama } = (await import(pathToFileURL(path.join(moduleDir, 'dist', 'index.js')).href)) as {
    getLlama(o: { gpu: false; build: 'never'; logLevel: string; progressLogs: boolean }): Promise<Llama>;
  };
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error', progressLogs: false });
  const runs: Record<string, GreedyRun> = {};
  for (const [name, file] of [['f16', files.text], ...options.types.map((t) => [t, made[t]!.file])] as [string, string][]) {
    log(`llama.cpp: ${path.basename(file)}, ${options.steps} greedy steps`);
    runs[name] = await greedy(llama, file, options.steps, options.threads);
  }
  await llama.dispose();

  const result = {
    nodeLlamaCpp: NODE_LLAMA_CPP_VERSION,
    model: `${path.basename(files.text)} (bench/model-files.ts)`,
    prompt: PROMPT,
    steps: options.steps,
    runs,
  };
  // Arrays of numbers on one line each.
  const json = JSON.stringify(result, null, 2).replace(/\[\s+([-\d.e,\s]+?)\s+\]/g, (_, inner: string) => `[${inner.split(/,\s*/).join(', ')}]`);
  fs.writeFileSync(RESULT_FILE, `${json}\n`);
  for (const type of options.types) {
    const m = made[type]!;
    console.log(`${type}: ${(m.bytes / 1e9).toFixed(2)} GB${m.seconds !== undefined ? `, quantized in ${m.seconds.toFixed(0)} s` : ' (cached)'}`);
  }
  for (const [name, r] of Object.entries(runs)) {
    const same = r.tokens.filter((t, i) => t === runs.f16!.tokens[i]).length;
    console.log(`${name.padEnd(7)} finite ${r.finite}  tokens ${r.tokens.join(' ')}  (${same}/${r.tokens.length} equal to F16)  load ${r.loadSeconds.toFixed(1)} s`);
  }
  console.log(`wrote ${path.relative(process.cwd(), RESULT_FILE)}`);
  if (Object.values(runs).some((r) => !r.finite || r.tokens.length !== options.steps)) process.exitCode = 1;
}

await main();
