/**
 * `npm run bench`: our engine against llama.cpp on the same random-weight, real-shape PaliGemma files.
 *
 *   npm run bench -- [--trials N] [--only ours|llama] [--skip-generate-check] [--threads N] [--budget-minutes M]
 *                    [--quant q8_0,q4_k_m]
 *
 * 1. Makes the model files once in the cache dir ($PALIGEMMA_BENCH_CACHE, default ~/.cache/paligemma-bench;
 *    bench/model-files.ts) and installs node-llama-cpp there on first use (bench/llama.ts).
 * 2. Measures the machine's limits (bench/machine.ts), before and after the trials.
 * 3. Runs the engines alternately, each trial in a fresh child process (bench/ours.ts, bench/llama.ts),
 *    with the files read into the page cache just before, recording the other load on the machine.
 * 4. Prints min/median per metric, ratios, fractions of the limits and the issue's targets, and writes
 *    the JSON report to bench/results/<date>.json.
 *
 * With --quant, the text model and the projector are also quantized with each mix (once, into the cache;
 * bench/model-files.ts) and the whole run is repeated on each: one report per weight type, then the
 * types side by side with issue 13's targets (bench/quant-report.ts).
 *
 * A trial that would not fit in the time budget (default 28 minutes per weight type) is skipped and
 * listed as such; a child that hangs is killed after 10 minutes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { loadTestAddon } from '../lib/native.js';
import { joinRuns, runChild } from './child.js';
import { ensureNodeLlamaCpp, NODE_LLAMA_CPP_VERSION, type LlamaInput, type LlamaResult } from './llama.js';
import { measureMachine, type MachineLimits } from './machine.js';
import { QUANT_MIXES, type QuantMix } from '../lib/quant/plan.js';
import { benchCacheDir, ensureModelFiles, ensureQuantizedFile, type BenchModelFiles } from './model-files.js';
import type { OursDescribeResult, OursInput, OursResult, OursTextResult } from './ours.js';
import { compareQuantRuns, formatQuantComparison, type WeightRun } from './quant-report.js';
import { buildReport, formatSummary, limitsOf, writeReport, type RunConfig, type Trial } from './report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD_TIMEOUT_MS = 10 * 60_000;

type Engine = 'ours' | 'llama';

interface Options {
  trials: number;
  threads: number;
  only?: Engine;
  checkFiles: boolean;
  /** Per weight type. */
  budgetMs: number;
  quant: QuantMix[];
}

function parseArgs(argv: string[]): Options {
  const o: Options = { trials: 3, threads: 2, checkFiles: true, budgetMs: 28 * 60_000, quant: [] };
  const count = (flag: string, value: string | undefined) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${value}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--trials') o.trials = count(a, argv[++i]);
    else if (a === '--threads') o.threads = count(a, argv[++i]);
    else if (a === '--budget-minutes') o.budgetMs = count(a, argv[++i]) * 60_000;
    else if (a === '--skip-generate-check') o.checkFiles = false;
    else if (a === '--quant') {
      o.quant = (argv[++i] ?? '').split(',') as QuantMix[];
      for (const m of o.quant) if (!QUANT_MIXES.includes(m)) throw new Error(`--quant takes a comma-separated list of ${QUANT_MIXES.join(', ')}, got ${m}`);
    }
    else if (a === '--only') {
      const e = argv[++i];
      if (e !== 'ours' && e !== 'llama') throw new Error(`--only takes ours or llama, got ${e}`);
      o.only = e;
    } else throw new Error(`unknown argument ${a} (see the header of bench/run.ts)`);
  }
  return o;
}

const log = (line: string) => console.error(line);

/**
 * Reads the files through once so both engines start from the page cache (idle pages get reclaimed
 * here). The files' pages are dropped from the cache first, so that what the engines find there was
 * cached by reads, as after any reboot or eviction, not by the writes that made the files: on Linux
 * 6.x reads cache a file in large folios, which a mapping with MADV_HUGEPAGE (ours) maps 2 MiB at a
 * time, and the small pages a write leaves cost our decode about a quarter more time.
 */
function warmPageCache(files: string[]): number {
  const t0 = performance.now();
  const buffer = Buffer.allocUnsafe(8 * 2 ** 20);
  for (const file of files) loadTestAddon().dropPageCache(file);
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      while (fs.readSync(fd, buffer, 0, buffer.length, null) > 0);
    } finally {
      fs.closeSync(fd);
    }
  }
  return performance.now() - t0;
}

function cpuModel(): string {
  const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  return /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const cache = benchCacheDir();
  // machine.ts compiles its probe into PALIGEMMA_BENCH_CACHE: keep everything the bench makes in one place.
  process.env.PALIGEMMA_BENCH_CACHE = cache;

  log(`bench cache: ${cache}`);
  const files: BenchModelFiles = await ensureModelFiles(cache, { check: options.checkFiles, log });
  const engines: Engine[] = options.only ? [options.only] : ['ours', 'llama'];
  let llamaModuleDir: string | undefined;
  let llamaError: string | undefined;
  if (engines.includes('llama')) {
    const found = await ensureNodeLlamaCpp(cache, log);
    if ('error' in found) {
      llamaError = found.error;
      log(`  llama.cpp will not run: ${found.error}`);
    } else llamaModuleDir = found.moduleDir;
  } else llamaError = 'not requested (--only ours)';
  const runnable = engines.filter((e) => e === 'ours' || llamaModuleDir);

  log(`measuring the machine (${options.threads} threads)`);
  const probes: MachineLimits[] = [measureMachine(options.threads)];

  const config: RunConfig = {
    trials: options.trials,
    threads: options.threads,
    promptTokens: 266,
    decodeTokens: 32,
    describeTokens: 20,
    describePrompt: 'caption en',
    only: options.only,
  };

  // The weight types: F16, then each quantization mix (its projector: Q8_0 whatever the mix).
  const weightFiles: { weights: string; files: BenchModelFiles }[] = [{ weights: 'f16', files }];
  for (const mix of options.quant) {
    const text = await ensureQuantizedFile(files.text, mix, log);
    const projector = await ensureQuantizedFile(files.projector, 'q8_0', log);
    weightFiles.push({ weights: mix, files: { ...files, text: text.file, textBytes: text.bytes, projector: projector.file, projectorBytes: projector.bytes } });
  }

  const runs: WeightRun[] = [];
  for (const { weights, files: f } of weightFiles) {
    const budget = { started: performance.now(), ms: options.budgetMs };
    const { trials, skipped } = await runTrials(f, runnable, llamaModuleDir, config, options, budget);
    log('measuring the machine again');
    probes.push(measureMachine(options.threads));
    const oursResult = trials.find((t) => t.engine === 'ours' && t.result)?.result as OursResult | undefined;
    const llamaResult = trials.find((t) => t.engine === 'llama' && t.result)?.result as LlamaResult | undefined;
    const report = buildReport({
      date: new Date().toISOString(),
      host: { cpu: cpuModel(), cores: os.cpus().length, memoryGb: os.totalmem() / 1e9, node: process.version, platform: `${os.platform()} ${os.arch()}` },
      config: { ...config, weights: weights.toUpperCase() },
      files: { text: f.text, textBytes: f.textBytes, projector: f.projector, projectorBytes: f.projectorBytes, image: f.image },
      llama: { version: NODE_LLAMA_CPP_VERSION, available: llamaModuleDir !== undefined, error: llamaError, cpuBackend: llamaResult?.cpuBackend },
      ours: { simd: oursResult?.simd, threads: oursResult?.threads, addon: process.env.PALIGEMMA_ADDON },
      limits: limitsOf(probes),
      trials,
      skipped,
      wallSeconds: (performance.now() - budget.started) / 1000,
    });
    const file = writeReport(path.join(here, 'results'), report);
    console.log(formatSummary(report));
    console.log(`\nJSON report: ${path.relative(process.cwd(), file)} (${(report.wallSeconds / 60).toFixed(1)} min)\n`);
    runs.push({ weights, report });
  }
  if (runs.length > 1) {
    const comparison = compareQuantRuns(runs);
    console.log(formatQuantComparison(comparison));
    const file = path.join(here, 'results', `${runs[0]!.report.date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}-quant.json`);
    fs.writeFileSync(file, JSON.stringify({ weights: runs.map((r) => r.weights), comparison }, null, 2) + '\n');
    console.log(`\nJSON comparison: ${path.relative(process.cwd(), file)} (whole run ${((performance.now() - started) / 60_000).toFixed(1)} min)`);
  }
}

/** The trials of one weight type's files, engines alternating, within the time budget. */
async function runTrials(
  files: BenchModelFiles, runnable: Engine[], llamaModuleDir: string | undefined, config: RunConfig, options: Options,
  budget: { started: number; ms: number },
): Promise<{ trials: Trial[]; skipped: string[] }> {
  const oursInput: Omit<OursInput, 'phase'> = {
    model: files.text, projector: files.projector, image: files.image, threads: options.threads,
    promptTokens: config.promptTokens, decodeTokens: config.decodeTokens, describeTokens: config.describeTokens,
    describePrompt: config.describePrompt,
  };
  const llamaInput: LlamaInput | undefined = llamaModuleDir === undefined ? undefined : {
    model: files.text, moduleDir: llamaModuleDir, threads: options.threads,
    promptTokens: config.promptTokens, decodeTokens: config.decodeTokens,
  };
  const trials: Trial[] = [];
  const skipped: string[] = [];
  const longest: Partial<Record<Engine, number>> = {};
  const probeReserveMs = 30_000; // the closing machine probe and the report
  for (let trial = 1; trial <= options.trials; trial++) {
    // Alternate which engine goes first, so neither always runs right after the other.
    const order = trial % 2 === 1 ? runnable : [...runnable].reverse();
    for (const engine of order) {
      const elapsed = performance.now() - budget.started;
      const expected = longest[engine] ?? 0;
      if (elapsed + expected + probeReserveMs > budget.ms) {
        skipped.push(`${engine} trial ${trial}`);
        continue;
      }
      const warmMs = warmPageCache(engine === 'ours' ? [files.text, files.projector] : [files.text]);
      const readGbpsBefore = measureMachine(options.threads, 256).readGbps;
      log(`${engine} trial ${trial}/${options.trials}, ${path.basename(files.text)} (page cache warmed in ${(warmMs / 1000).toFixed(1)} s, read probe ${readGbpsBefore.toFixed(1)} GB/s, load average ${os.loadavg()[0]!.toFixed(2)})`);
      const timeout = Math.min(CHILD_TIMEOUT_MS, Math.max(60_000, budget.ms - elapsed - probeReserveMs));
      if (engine === 'ours') {
        // Two processes: the describe() phase's peak RSS is then its own (bench/ours.ts).
        const script = path.join(here, 'ours.ts');
        const text = await runChild<OursTextResult>(script, { ...oursInput, phase: 'text' } satisfies OursInput, timeout);
        const describe = text.error
          ? undefined
          : await runChild<OursDescribeResult>(script, { ...oursInput, phase: 'describe' } satisfies OursInput, Math.max(60_000, timeout - text.wallMs));
        trials.push({ engine, trial, readGbpsBefore, ...joinRuns(text, describe) });
      } else {
        const run = await runChild<LlamaResult>(path.join(here, 'llama.ts'), llamaInput, timeout);
        trials.push({ engine, trial, readGbpsBefore, ...run });
      }
      const last = trials.at(-1)!;
      longest[engine] = Math.max(longest[engine] ?? 0, last.wallMs);
      log(last.error ? `  failed: ${last.error}` : `  done in ${(last.wallMs / 1000).toFixed(0)} s; other processes used ${last.otherCores?.toFixed(2)} cores`);
    }
  }
  return { trials, skipped };
}

await main();
