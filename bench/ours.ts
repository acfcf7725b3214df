/**
 * This package's engine on the bench files, through its public API only (loadModel, generate,
 * describe, evaluate). Run as a script, this file is the child process of one trial (see
 * bench/child.ts). The native addon is the one lib/native.ts picks (PALIGEMMA_ADDON overrides it).
 *
 *   node --import tsx bench/ours.ts '{"model": "...", "projector": "...", "image": "...", "threads": 2, ...}'
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { loadModel, type GenerationResult } from '../lib/index.js';
import { childInput, memoryStatus, progress, promptTokens, reply } from './child.js';

/**
 * Input of one phase of a trial of our engine. A trial is two processes: `text` (text-only load,
 * prefill, decode) and `describe` (load with the projector, describe() twice), so that the second
 * one's peak RSS is that of a process that only describes — not inflated by the memory the text
 * phase's buffers leave in the allocator.
 */
export interface OursInput {
  phase: 'text' | 'describe';
  model: string;
  projector: string;
  image: string;
  threads: number;
  promptTokens: number;
  decodeTokens: number;
  describeTokens: number;
  describePrompt: string;
}

/** One describe() call, broken down (ms). */
export interface DescribeTimings {
  totalMs: number;
  preprocessMs: number;
  visionMs: number;
  prefillMs: number;
  decodeMs: number;
  /** Per decode step (the first generated token comes from the prefill). */
  decodeMsPerToken: number;
  promptTokens: number;
  generatedTokens: number;
  /** The vision output came from the model's image cache (then visionMs is not the tower). */
  imageCacheHit: boolean;
}

/** What the text phase of a trial measured (ms unless named otherwise). */
export interface OursTextResult {
  /** Text-only loadModel with the file already in the page cache (a first, untimed load put it there). */
  loadMs: number;
  /** First short generate after the load (8 prompt tokens, 2 generated): pays for touching the mapped weights. */
  firstCallMs: number;
  /** Text prefill of the prompt (bidirectional attention over it, as for PaliGemma prompts). */
  prefillMs: number;
  decodeMsPerToken: number;
  decodeSteps: number;
  /** Logits of a short text prompt are all finite. */
  finiteLogits: boolean;
  /** Resident memory at the end of the text-only phase, and its peak. */
  textRssMb: number;
  textPeakRssMb: number;
  simd: string;
  threads: number;
  cpuSeconds: number;
}

/** What the describe phase of a trial measured (ms unless named otherwise). */
export interface OursDescribeResult {
  /** loadModel with the projector. */
  loadWithProjectorMs: number;
  /** The first describe() after that load, and a second one (weights and buffers warm). */
  describeCold: DescribeTimings;
  describe: DescribeTimings;
  /** Peak resident memory of the describe phase's process (load with the projector, describe() twice). */
  peakRssMb: number;
  cpuSeconds: number;
}

/** What one trial of our engine measured: both phases (cpuSeconds is their sum). */
export type OursResult = OursTextResult & OursDescribeResult;

/** Decode steps of a generation (tokensPerSecond counts them over decodeMs). */
function decodeSteps(r: GenerationResult): number {
  return Math.round((r.timings.tokensPerSecond * r.timings.decodeMs) / 1000);
}

function describeTimings(r: GenerationResult, totalMs: number): DescribeTimings {
  const t = r.timings;
  const steps = decodeSteps(r);
  return {
    totalMs,
    preprocessMs: t.preprocessMs,
    visionMs: t.visionMs,
    prefillMs: t.prefillMs,
    decodeMs: t.decodeMs,
    decodeMsPerToken: steps > 0 ? t.decodeMs / steps : NaN,
    promptTokens: t.promptTokens,
    generatedTokens: t.generatedTokens,
    imageCacheHit: t.imageCacheHit,
  };
}

async function textPhase(input: OursInput): Promise<OursTextResult> {
  const cpu0 = process.cpuUsage();
  const textOnly = { model: input.model, threads: input.threads };

  // Warm-up: a first load and a short call, as a first real use would make (module and addon
  // initialisation, the file's header in the page cache). The timed load below starts from there.
  progress('ours: warm-up load');
  const tokens = promptTokens(input.promptTokens);
  const warm = await loadModel(textOnly);
  await warm.generate({ tokens: tokens.slice(0, 8), maxTokens: 2 });
  await warm.dispose();
  let t = performance.now();
  const model = await loadModel(textOnly);
  const loadMs = performance.now() - t;

  t = performance.now();
  await model.generate({ tokens: tokens.slice(0, 8), maxTokens: 2 });
  const firstCallMs = performance.now() - t;

  // One call gives both figures: the prefill up to the first token, then the decode steps. Generation
  // stops early at <eos>, so the step count is reported.
  progress(`ours: prefill ${tokens.length} tokens, decode ${input.decodeTokens}`);
  const run = await model.generate({ tokens, maxTokens: input.decodeTokens + 1 });
  const steps = decodeSteps(run);

  const evaluation = await model.evaluate({ prompt: input.describePrompt, topK: 1 });
  const finiteLogits = evaluation.lastLogits.every(Number.isFinite);
  const text = memoryStatus();
  const runtime = model.runtime;
  await model.dispose();
  const cpu = process.cpuUsage(cpu0);
  return {
    loadMs,
    firstCallMs,
    prefillMs: run.timings.prefillMs,
    decodeMsPerToken: steps > 0 ? run.timings.decodeMs / steps : NaN,
    decodeSteps: steps,
    finiteLogits,
    textRssMb: text.rssMb,
    textPeakRssMb: text.peakRssMb,
    simd: runtime.simd,
    threads: runtime.threads,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

async function describePhase(input: OursInput): Promise<OursDescribeResult> {
  const cpu0 = process.cpuUsage();
  progress('ours: load with projector, describe() twice');
  const t = performance.now();
  // imageCacheBytes 0: the second describe of the same image must run the vision tower again.
  const full = await loadModel({ model: input.model, projector: input.projector, threads: input.threads, imageCacheBytes: 0 });
  const loadWithProjectorMs = performance.now() - t;
  const image = fs.readFileSync(input.image);
  const describeOnce = async () => {
    const t0 = performance.now();
    const r = await full.describe(image, { prompt: input.describePrompt, maxTokens: input.describeTokens });
    return describeTimings(r, performance.now() - t0);
  };
  const describeCold = await describeOnce();
  const describe = await describeOnce();
  await full.dispose();
  const cpu = process.cpuUsage(cpu0);
  return { loadWithProjectorMs, describeCold, describe, peakRssMb: memoryStatus().peakRssMb, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

async function main(): Promise<void> {
  const input = childInput<OursInput>();
  await reply(input.phase === 'text' ? await textPhase(input) : await describePhase(input));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
