/**
 * Interop of `paligemma quantize` and our quantized kernels with llama.cpp (slow; not part of `npm test`):
 *
 *   node --import tsx bench/quant-interop.ts [--types q8_0,q4_k_m] [--steps 16] [--threads 2]
 *
 * 1. Makes the bench's full-size random-weight text GGUF (bench/model-files.ts, ~5 GB, cached) and
 *    quantizes it with each type into the cache (once).
 * 2. Loads the F16 file (the baseline: how far apart the engines are without quantization) and each
 *    quantized file in llama.cpp (node-llama-cpp 3.21.1, installed into the cache on first use
 *    by bench/llama.ts) and in this package, both on the CPU, and runs the same causal passes on each:
 *    - greedy: a fixed 16-id prompt (`<bos>` and 15 ids drawn with the bench's seed), then `--steps`
 *      greedy tokens;
 *    - teacher-forced: the prompt and `--steps` more fixed ids, and at each of the `--steps` + 1 positions
 *      from the prompt's last on, the next-token distribution: its top 5 ids and their log-probabilities.
 *    A random-weight model's greedy decoding soon repeats one token (the same on both engines), so the
 *    greedy tokens alone say little: the teacher-forced positions give `--steps` + 1 different contexts,
 *    each compared by its top-5 ids and log-probabilities (a log-probability is the logit minus the
 *    position's log-sum-exp: llama.cpp reports probabilities, not logits).
 * 3. Writes both engines' tokens, top-5 lists and the differences to bench/quant-interop.json and prints
 *    a summary; exits 1 when a file fails to load, a probability is not finite, or the greedy tokens differ.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { locateModelFiles } from '../lib/model/files.js';
import { textSpec } from '../lib/model/native-spec.js';
import { native } from '../lib/native.js';
import { QUANT_MIXES, type QuantMix } from '../lib/quant/plan.js';
import { promptTokens } from './child.js';
import { ensureNodeLlamaCpp, NODE_LLAMA_CPP_VERSION } from './llama.js';
import { benchCacheDir, ensureModelFiles, ensureQuantizedFile } from './model-files.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const RESULT_FILE = path.join(here, 'quant-interop.json');
const PROMPT_LENGTH = 16;

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

/** The top 5 (id, log-probability) of a next-token distribution. */
type Top5 = [number, number][];

/** One engine on one file. */
interface EngineRun {
  greedy: number[];
  /** Per teacher-forced position. */
  forced: Top5[];
  finite: boolean;
}

/** The part of node-llama-cpp's API used here (no types: it is not a dependency). */
interface LlamaSequence {
  evaluateWithMetadata(tokens: number[], metadata: { probabilities: true }, options: { temperature: number; yieldEogToken: boolean }):
    AsyncGenerator<{ token: number; probabilities: Map<number, number> }>;
  controlledEvaluate(input: (number | [number, { generateNext: { probabilities: true } }])[]): Promise<({ next: { probabilities?: Map<number, number> } } | undefined)[]>;
}
interface Llama {
  loadModel(options: { modelPath: string; gpuLayers: number }): Promise<{
    createContext(options: { contextSize: number; threads: number; sequences: number }): Promise<{ getSequence(): LlamaSequence; dispose(): Promise<void> }>;
    dispose(): Promise<void>;
  }>;
  dispose(): Promise<void>;
}

const top5Of = (probabilities: Map<number, number>): Top5 =>
  [...probabilities.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([id, p]) => [id, Math.log(p)]);

async function llamaRun(llama: Llama, file: string, sequence: number[], steps: number, threads: number): Promise<EngineRun> {
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: 512, threads, sequences: 2 });
  let finite = true;
  const greedy: number[] = [];
  const prompt = sequence.slice(0, PROMPT_LENGTH);
  for await (const out of context.getSequence().evaluateWithMetadata(prompt, { probabilities: true }, { temperature: 0, yieldEogToken: true })) {
    finite &&= out.probabilities.size > 0 && [...out.probabilities.values()].every(Number.isFinite);
    greedy.push(out.token);
    if (greedy.length >= steps) break;
  }
  const outputs = await context.getSequence().controlledEvaluate(
    sequence.map((id, i) => (i >= PROMPT_LENGTH - 1 ? [id, { generateNext: { probabilities: true } }] : id)),
  );
  const forced = outputs.slice(PROMPT_LENGTH - 1).map((o) => {
    const p = o?.next.probabilities ?? new Map<number, number>();
    finite &&= p.size > 0 && [...p.values()].every(Number.isFinite);
    return top5Of(p);
  });
  await context.dispose();
  await model.dispose();
  return { greedy, forced, finite };
}

/** Top 5 of logits as (id, log-softmax). */
function top5OfLogits(logits: Float32Array): Top5 {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  const order = Array.from({ length: 5 }, () => -1);
  for (let i = 0; i < logits.length; i++) {
    for (let r = 0; r < 5; r++) {
      if (order[r]! < 0 || logits[i]! > logits[order[r]!]!) {
        order.splice(r, 0, i);
        order.length = 5;
        break;
      }
    }
  }
  return order.map((id) => [id, logits[id]! - lse]);
}

/** Ours, causal like llama.cpp: `<bos>` prefilled alone, every later id a decode step. */
async function oursRun(file: string, sequence: number[], steps: number, threads: number): Promise<EngineRun> {
  const files = await locateModelFiles({ model: file, requireProjector: false });
  const model = new native.NativeModel({ text: textSpec(files.text), threads });
  try {
    const feed = async (seq: number, ids: number[]) => {
      const rows = [(await model.prefill(seq, null, Int32Array.of(ids[0]!))).logits];
      for (const id of ids.slice(1)) rows.push(await model.decode(Int32Array.of(seq), Int32Array.of(id)));
      return rows;
    };
    const finiteRows = (rows: Float32Array[]) => rows.every((r) => r.every(Number.isFinite));
    let last = (await feed(0, sequence.slice(0, PROMPT_LENGTH))).at(-1)!;
    let finite = finiteRows([last]);
    const greedy: number[] = [];
    for (let s = 0; s < steps; s++) {
      greedy.push(top5OfLogits(last)[0]![0]);
      if (s + 1 < steps) last = await model.decode(Int32Array.of(0), Int32Array.of(greedy.at(-1)!));
      finite &&= finiteRows([last]);
    }
    const forcedRows = (await feed(1, sequence)).slice(PROMPT_LENGTH - 1);
    finite &&= finiteRows(forcedRows);
    return { greedy, forced: forcedRows.map(top5OfLogits), finite };
  } finally {
    model.dispose();
  }
}

/** How the two engines' runs on one file compare. */
function compare(ours: EngineRun, llama: EngineRun) {
  const sameTop5 = ours.forced.filter((t, i) => t.every(([id], r) => id === llama.forced[i]![r]![0])).length;
  const sameTop1 = ours.forced.filter((t, i) => t[0]![0] === llama.forced[i]![0]![0]).length;
  // |Δ log-probability| over llama.cpp's top 5 ids, each looked up in ours' top 5 (absent: not compared).
  const diffs = llama.forced.map((t, i) => Math.max(...t.map(([id, lp]) => {
    const mine = ours.forced[i]!.find(([o]) => o === id);
    return mine ? Math.abs(mine[1] - lp) : NaN;
  }).filter(Number.isFinite)));
  return {
    greedyEqual: ours.greedy.filter((t, i) => t === llama.greedy[i]).length,
    positions: ours.forced.length,
    sameTop5Ids: sameTop5,
    sameTop1: sameTop1,
    firstStepLogProbDiff: diffs[0]!,
    maxLogProbDiff: Math.max(...diffs),
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const cache = benchCacheDir();
  const files = await ensureModelFiles(cache, { check: false, log });
  const llamaPackage = await ensureNodeLlamaCpp(cache, log);
  if ('error' in llamaPackage) throw new Error(llamaPackage.error);
  // The F16 file first: how far apart the engines are without quantization.
  const quantized: Record<string, string> = { f16: files.text };
  for (const type of options.types) quantized[type] = (await ensureQuantizedFile(files.text, type, log)).file;
  const sequence = promptTokens(PROMPT_LENGTH + options.steps);

  const { getLlama } = (await import(pathToFileURL(path.join(llamaPackage.moduleDir, 'dist', 'index.js')).href)) as {
    getLlama(o: { gpu: false; build: 'never'; logLevel: string; progressLogs: boolean }): Promise<Llama>;
  };
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error', progressLogs: false });
  const llamaRuns: Record<string, EngineRun> = {};
  for (const [type, file] of Object.entries(quantized)) {
    log(`llama.cpp: ${path.basename(file)}`);
    llamaRuns[type] = await llamaRun(llama, file, sequence, options.steps, options.threads);
  }
  await llama.dispose();
  const runs: Record<string, { file: string; llama: EngineRun; ours: EngineRun; comparison: ReturnType<typeof compare> }> = {};
  for (const [type, file] of Object.entries(quantized)) {
    log(`ours: ${path.basename(file)}`);
    const ours = await oursRun(file, sequence, options.steps, options.threads);
    runs[type] = { file: path.basename(file), llama: llamaRuns[type]!, ours, comparison: compare(ours, llamaRuns[type]!) };
  }

  const result = { nodeLlamaCpp: NODE_LLAMA_CPP_VERSION, model: `${path.basename(files.text)} quantized`, sequence, promptLength: PROMPT_LENGTH, runs };
  // Short arrays of numbers on one line each.
  const json = JSON.stringify(result, null, 2).replace(/\[\s+([-\d.e,\s]+?)\s+\]/g, (_, inner: string) => `[${inner.split(/,\s*/).join(', ')}]`);
  fs.writeFileSync(RESULT_FILE, `${json}\n`);
  let ok = true;
  for (const [type, r] of Object.entries(runs)) {
    const c = r.comparison;
    ok &&= r.ours.finite && r.llama.finite && c.greedyEqual === options.steps;
    console.log(`${type}: greedy tokens equal ${c.greedyEqual}/${options.steps} (llama.cpp ${r.llama.greedy.slice(0, 4).join(' ')} …, ours ${r.ours.greedy.slice(0, 4).join(' ')} …); ` +
      `teacher-forced: top-1 equal at ${c.sameTop1}/${c.positions} positions, top-5 ids equal at ${c.sameTop5Ids}/${c.positions}, ` +
      `|Δ log-probability| of llama.cpp's top 5: first step ${c.firstStepLogProbDiff.toExponential(2)}, at most ${c.maxLogProbDiff.toExponential(2)}; ` +
      `finite: llama.cpp ${r.llama.finite}, ours ${r.ours.finite}`);
  }
  console.log(`wrote ${path.relative(process.cwd(), RESULT_FILE)}`);
  if (!ok) process.exitCode = 1;
}

await main();
