/**
 * llama.cpp, through node-llama-cpp, on the bench's text GGUF. node-llama-cpp is not a dependency of
 * this package: {@link ensureNodeLlamaCpp} installs the pinned version into the bench cache on first use
 * (its prebuilt binaries; the GPU builds it pulls along stay unused). Run as a script, this file is the
 * child process of one trial (see bench/child.ts): CPU build, flash attention on, a 512-token context.
 *
 *   node --import tsx bench/llama.ts '{"model": "...", "moduleDir": "...", "threads": 2, ...}'
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { childInput, memoryStatus, progress, promptTokens, reply } from './child.js';

/** The node-llama-cpp version the bench compares against (the one the targets were set with). */
export const NODE_LLAMA_CPP_VERSION = '3.21.1';
const INSTALL_TIMEOUT_MS = 15 * 60_000;

/** Where node-llama-cpp lives once installed, or why it is unavailable. */
export type NodeLlamaCpp = { moduleDir: string } | { error: string };

/**
 * Finds node-llama-cpp@3.21.1 under `<cacheDir>/llama`, installing it there with npm if it is missing
 * (~700 MB, a few minutes). Never throws: a failed install comes back as `{ error }`.
 */
export async function ensureNodeLlamaCpp(cacheDir: string, log: (line: string) => void): Promise<NodeLlamaCpp> {
  const prefix = path.join(cacheDir, 'llama');
  const moduleDir = path.join(prefix, 'node_modules', 'node-llama-cpp');
  const installed = () => {
    try {
      return JSON.parse(fs.readFileSync(path.join(moduleDir, 'package.json'), 'utf8')).version === NODE_LLAMA_CPP_VERSION;
    } catch {
      return false;
    }
  };
  if (installed()) return { moduleDir };
  log(`  installing node-llama-cpp@${NODE_LLAMA_CPP_VERSION} into ${prefix} (once; ~700 MB)`);
  fs.mkdirSync(prefix, { recursive: true });
  const t0 = performance.now();
  const args = ['i', '-E', `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`, '--prefix', prefix, '--no-audit', '--no-fund'];
  // Under `flock ~/.cache/pg-llama.lock` where flock exists, so that two checkouts do not install at once.
  const lock = path.join(os.homedir(), '.cache', 'pg-llama.lock');
  const [command, commandArgs] = hasFlock() ? ['flock', [lock, 'npm', ...args]] : ['npm', args];
  const failure = await new Promise<string | undefined>((resolve) =>
    execFile(command, commandArgs, { timeout: INSTALL_TIMEOUT_MS, maxBuffer: 64 * 2 ** 20 }, (err, _stdout, stderr) =>
      resolve(err ? `${err.message.split('\n')[0]} ${stderr.trim().split('\n').slice(-3).join(' | ')}` : undefined),
    ),
  );
  if (failure !== undefined || !installed()) return { error: `npm install of node-llama-cpp@${NODE_LLAMA_CPP_VERSION} failed: ${failure ?? 'package missing after install'}` };
  log(`  installed in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return { moduleDir };
}

function hasFlock(): boolean {
  try {
    execFileSync('flock', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Input of one llama.cpp trial. */
export interface LlamaInput {
  model: string;
  moduleDir: string;
  threads: number;
  promptTokens: number;
  decodeTokens: number;
}

/** What one llama.cpp trial measured (ms unless named otherwise). */
export interface LlamaResult {
  /** Model load with the file already in the page cache (a first, untimed load put it there). */
  loadMs: number;
  /** Creating the context (KV cache, compute buffers). */
  contextMs: number;
  /** First short evaluation after the load (8 prompt tokens, 2 generated). */
  firstCallMs: number;
  /** Prefill of the prompt up to the first sampled token. */
  prefillMs: number;
  /** Per generated token after the first, over `decodeSteps` steps of the same run. */
  decodeMsPerToken: number;
  decodeSteps: number;
  /** The probabilities llama.cpp returned for a short prompt are all finite. */
  finiteLogits: boolean;
  /** The ggml CPU backend variant that ran (e.g. haswell, zen4), when node-llama-cpp reports it. */
  cpuBackend?: string;
  rssMb: number;
  peakRssMb: number;
  cpuSeconds: number;
}

/** The part of node-llama-cpp's API the bench uses (it has no types here: not a dependency). */
interface LlamaSequence {
  evaluate(tokens: number[], options: { temperature: number; yieldEogToken: boolean }): AsyncGenerator<number>;
  evaluateWithMetadata(tokens: number[], metadata: { probabilities: true }, options: { temperature: number; yieldEogToken: boolean }):
    AsyncGenerator<{ token: number; probabilities: Map<number, number> }>;
  clearHistory(): Promise<void>;
}
interface LlamaContext {
  getSequence(): LlamaSequence;
  dispose(): Promise<void>;
}
interface LlamaModel {
  createContext(options: { contextSize: number; batchSize: number; threads: { ideal: number; min: number }; flashAttention: boolean }): Promise<LlamaContext>;
  dispose(): Promise<void>;
}
interface Llama {
  loadModel(options: { modelPath: string; gpuLayers: number; useMmap: boolean }): Promise<LlamaModel>;
  readonly gpu: string | false;
  dispose(): Promise<void>;
}
interface NodeLlamaCppModule {
  getLlama(options: { gpu: false; build: 'never'; maxThreads: number; logLevel: string; progressLogs: boolean }): Promise<Llama>;
}

/** Runs `tokens` and times the first sampled token (prefill) and `generate - 1` more (decode). */
async function timedEvaluate(seq: LlamaSequence, tokens: number[], generate: number): Promise<{ prefillMs: number; decodeMs: number; steps: number }> {
  await seq.clearHistory();
  const t0 = performance.now();
  let t1 = t0;
  let count = 0;
  // yieldEogToken: an end-of-generation token does not stop the loop, so every run decodes the same count.
  for await (const _ of seq.evaluate(tokens, { temperature: 0, yieldEogToken: true })) {
    if (++count === 1) t1 = performance.now();
    if (count >= generate) break;
  }
  return { prefillMs: t1 - t0, decodeMs: performance.now() - t1, steps: count - 1 };
}

async function main(): Promise<void> {
  const input = childInput<LlamaInput>();
  const cpu0 = process.cpuUsage();
  const { getLlama } = (await import(pathToFileURL(path.join(input.moduleDir, 'dist', 'index.js')).href)) as NodeLlamaCppModule;
  const llama = await getLlama({ gpu: false, build: 'never', maxThreads: input.threads, logLevel: 'error', progressLogs: false });
  const loadOptions = { modelPath: input.model, gpuLayers: 0, useMmap: true };

  progress('llama.cpp: warm-up load');
  await (await llama.loadModel(loadOptions)).dispose();
  let t = performance.now();
  const model = await llama.loadModel(loadOptions);
  const loadMs = performance.now() - t;
  t = performance.now();
  const context = await model.createContext({
    contextSize: 512,
    batchSize: 512,
    threads: { ideal: input.threads, min: input.threads },
    flashAttention: true,
  });
  const contextMs = performance.now() - t;
  const seq = context.getSequence();

  const tokens = promptTokens(input.promptTokens);
  t = performance.now();
  await timedEvaluate(seq, tokens.slice(0, 8), 2);
  const firstCallMs = performance.now() - t;

  progress(`llama.cpp: prefill ${tokens.length} tokens, decode ${input.decodeTokens}`);
  const run = await timedEvaluate(seq, tokens, input.decodeTokens + 1);

  await seq.clearHistory();
  let finiteLogits = false;
  for await (const out of seq.evaluateWithMetadata(tokens.slice(0, 8), { probabilities: true }, { temperature: 0, yieldEogToken: true })) {
    finiteLogits = out.probabilities.size > 0 && [...out.probabilities.values()].every(Number.isFinite);
    break;
  }

  const memory = memoryStatus();
  const cpu = process.cpuUsage(cpu0);
  const result: LlamaResult = {
    loadMs,
    contextMs,
    firstCallMs,
    prefillMs: run.prefillMs,
    decodeMsPerToken: run.decodeMs / run.steps,
    decodeSteps: run.steps,
    finiteLogits,
    cpuBackend: loadedCpuBackend(),
    ...memory,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  await reply(result);
}

/** The ggml CPU variant library mapped into this process (ggml picks one per CPU at load). */
function loadedCpuBackend(): string | undefined {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  return /libggml-cpu-([\w-]+)\.so/.exec(maps)?.[1];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
