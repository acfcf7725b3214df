/**
 * The bench harness's arithmetic (bench/report.ts, bench/model-files.ts, bench/child.ts): statistics,
 * FLOP counts checked against the real tensor tables, F16 rounding, and the ratios of a report built
 * from made-up trials; and how a trial's child process is run. Nothing here is timed or loads a model.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { joinRuns, promptTokens, runChild, type ChildRun } from '../bench/child.js';
import { f16Bits } from '../bench/model-files.js';
import { compareQuantRuns, formatQuantComparison } from '../bench/quant-report.js';
import { buildReport, limitsOf, stats, textPrefillFlops, visionFlops, type Trial } from '../bench/report.js';
import type { MachineLimits } from '../bench/machine.js';
import type { OursResult } from '../bench/ours.js';
import type { LlamaResult } from '../bench/llama.js';
import { parseConfig } from '../lib/convert/config.js';
import { projectorTensorPlan } from '../lib/convert/tensors.js';
import { seededRandom } from '../lib/model/sampling.js';
import { paligemmaTextModelLayout } from './helpers/gguf-fixtures.js';

/** IEEE half bits → number, written out independently of the encoder under test. */
function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

describe('joinRuns (a trial of two processes)', () => {
  const run = <T>(result: T | undefined, wallMs: number, otherCores: number, error?: string): ChildRun<T> =>
    ({ result, error, wallMs, loadBefore: 1, loadAfter: 2, otherCores, stealCores: 0 });

  it('merges the results, sums CPU and wall time, and weights the other load by time', () => {
    const joined = joinRuns(run({ a: 1, cpuSeconds: 3 }, 1000, 0.1), run({ b: 2, cpuSeconds: 4 }, 3000, 0.5));
    expect(joined.result).toEqual({ a: 1, b: 2, cpuSeconds: 7 });
    expect(joined.wallMs).toBe(4000);
    expect(joined.otherCores).toBeCloseTo((0.1 * 1000 + 0.5 * 3000) / 4000, 12);
    expect(joined.error).toBeUndefined();
  });

  it('a failure of either process fails the trial, with no result', () => {
    const failedFirst = joinRuns(run<{ cpuSeconds: number }>(undefined, 500, 0, 'timed out'), undefined);
    expect(failedFirst).toMatchObject({ result: undefined, error: 'timed out', wallMs: 500 });
    const failedSecond = joinRuns(run({ cpuSeconds: 1 }, 500, 0), run<{ cpuSeconds: number }>(undefined, 200, 0, 'stalled'));
    expect(failedSecond).toMatchObject({ result: undefined, error: 'stalled', wallMs: 700 });
  });
});

describe('runChild', () => {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'bench-echo-child.ts');
  type Echo = { input: unknown; execArgv: string[]; script: string; cpuSeconds: number };

  it('runs a TypeScript child in plain Node, from a bundle of it in build/bench/, with its input', async () => {
    const run = await runChild<Echo>(script, { hello: 'world', n: [1, 2] }, 60_000);
    expect(run.error).toBeUndefined();
    expect(run.result).toMatchObject({ input: { hello: 'world', n: [1, 2] }, execArgv: [] }); // no tsx loader
    expect(run.result!.script).toMatch(/[\\/]build[\\/]bench[\\/]bench-echo-child\.mjs$/);
    expect(run.wallMs).toBeGreaterThan(0);
  }, 60_000);

  it('reports a child that dies without a result, with the end of what it printed', async () => {
    const run = await runChild<Echo>(script, { fail: 'no model file here' }, 60_000);
    expect(run.result).toBeUndefined();
    expect(run.error).toMatch(/^exited \(code 1, signal null\) without a result: .*no model file here/);
  }, 60_000);
});

describe('stats', () => {
  it('gives min, median and max of the finite values', () => {
    expect(stats([3, 1, 2])).toEqual({ n: 3, min: 1, median: 2, max: 3 });
    expect(stats([4, 1, 3, 2])).toEqual({ n: 4, min: 1, median: 2.5, max: 4 });
    expect(stats([5, NaN, undefined, Infinity])).toEqual({ n: 1, min: 5, median: 5, max: 5 });
    expect(stats([])).toBeUndefined();
  });
});

describe('FLOP counts', () => {
  it('text prefill: 2 FLOPs per F16 block weight per token, attention, and one row of the output head', () => {
    const layout = paligemmaTextModelLayout();
    const blockWeights = layout.tensors
      .filter((t) => t.name.startsWith('blk.') && t.type === 'F16')
      .reduce((sum, t) => sum + t.dims[0]! * t.dims[1]!, 0);
    const embd = layout.tensors.find((t) => t.name === 'token_embd.weight')!;
    const n = 266;
    // 18 layers × 8 heads × 256 dims, 4 FLOPs per visible (query, key) pair.
    const attention = (pairs: number) => 4 * 18 * 8 * 256 * pairs;
    const head = 2 * embd.dims[0]! * embd.dims[1]!;
    expect(textPrefillFlops(n, 'causal')).toBe(2 * blockWeights * n + attention((n * (n + 1)) / 2) + head);
    expect(textPrefillFlops(n, 'prefix')).toBe(2 * blockWeights * n + attention(n * n) + head);
    // The figure for the 266-token prefill: ≈ 1060 GFLOP.
    expect(textPrefillFlops(n, 'prefix') / 1e9).toBeGreaterThan(1050);
    expect(textPrefillFlops(n, 'prefix') / 1e9).toBeLessThan(1075);
  });

  it('vision: 2 FLOPs per projector-file weight per patch, plus full attention over 256 patches', () => {
    const cfg = parseConfig({
      model_type: 'paligemma',
      vision_config: { hidden_size: 1152, intermediate_size: 4304, num_hidden_layers: 27, num_attention_heads: 16, patch_size: 14, image_size: 224 },
    });
    const weights = projectorTensorPlan(cfg)
      .filter((m) => m.storage === 'outtype')
      .reduce((sum, m) => sum + m.shape.reduce((a, b) => a * b, 1), 0);
    expect(visionFlops()).toBe(2 * 256 * weights + 4 * 27 * 256 * 256 * 1152);
  });
});

describe('f16Bits', () => {
  it('encodes exact values and rounds ties to even', () => {
    expect(f16Bits(1)).toBe(0x3c00);
    expect(f16Bits(-2)).toBe(0xc000);
    expect(f16Bits(65504)).toBe(0x7bff);
    expect(f16Bits(65519)).toBe(0x7bff); // would round to infinity: clamped
    expect(f16Bits(-1e9)).toBe(0xfbff);
    expect(f16Bits(1 + 2 ** -11)).toBe(0x3c00); // halfway between 0x3c00 and 0x3c01: to the even one
    expect(f16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway between 0x3c01 and 0x3c02
    expect(f16Bits(2 - 2 ** -12)).toBe(0x4000); // rounding carries into the exponent
    expect(f16Bits(1e-8)).toBe(0); // below the normal range: flushed (weights here are ~0.02)
  });

  it('is within half an ulp of random weight-sized float32 values', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 10_000; i++) {
      // float32 inputs: the encoder works on float32 bits, so a float64 would be rounded twice.
      const x = Math.fround((random() - 0.5) * 0.2);
      if (Math.abs(x) < 2 ** -14) continue;
      const back = f16Value(f16Bits(x));
      // A normal half has 10 mantissa bits: half an ulp is 2^-11 × 2^floor(log2 |x|), exactly.
      expect(Math.abs(back - x)).toBeLessThanOrEqual(2 ** -11 * 2 ** Math.floor(Math.log2(Math.abs(x))));
    }
  });
});

describe('promptTokens', () => {
  it('starts with <bos>, draws text pieces, and is the same every time', () => {
    const ids = promptTokens(266);
    expect(ids).toHaveLength(266);
    expect(ids[0]).toBe(2);
    expect(ids.every((id) => Number.isInteger(id) && id >= 2 && id < 256000)).toBe(true);
    expect(new Set(ids).size).toBeGreaterThan(250);
    expect(promptTokens(266)).toEqual(ids);
  });
});

describe('buildReport', () => {
  const probe: MachineLimits = {
    threads: 2, lanes: 8, fmaGflops: 100, fmaGflops1t: 50, fmaGflopsCoreCpu: 60, readGbps: 10, readGbps1t: 8, loadBefore: 0,
  };
  const describeTimings = { totalMs: 5000, preprocessMs: 10, visionMs: 1000, prefillMs: 3000, decodeMs: 950, decodeMsPerToken: 50, promptTokens: 270, generatedTokens: 20, imageCacheHit: false };
  const ours = (prefillMs: number, decodeMsPerToken: number): OursResult => ({
    loadMs: 100, firstCallMs: 500, prefillMs, decodeMsPerToken, decodeSteps: 32, finiteLogits: true, textRssMb: 5100,
    textPeakRssMb: 5200, loadWithProjectorMs: 150, describeCold: describeTimings, describe: describeTimings,
    peakRssMb: 6000, simd: 'avx2', threads: 2, cpuSeconds: 10,
  });
  const llama = (prefillMs: number, decodeMsPerToken: number): LlamaResult => ({
    loadMs: 400, contextMs: 50, firstCallMs: 800, prefillMs, decodeMsPerToken, decodeSteps: 32, finiteLogits: true,
    rssMb: 5300, peakRssMb: 5400, cpuSeconds: 20,
  });
  const run = { wallMs: 1000, loadBefore: 0.1, loadAfter: 0.2, otherCores: 0, stealCores: 0 };
  const trials: Trial[] = [
    { engine: 'ours', trial: 1, ...run, result: ours(4000, 600), readGbpsBefore: 10 },
    { engine: 'ours', trial: 2, ...run, result: ours(5000, 500), readGbpsBefore: 5 },
    { engine: 'ours', trial: 3, ...run, result: ours(9000, 700) },
    { engine: 'llama', trial: 1, ...run, result: llama(10000, 1000), readGbpsBefore: 8 },
    { engine: 'llama', trial: 2, ...run, error: 'stalled' },
  ];
  const report = buildReport({
    date: '2026-01-01T00:00:00.000Z',
    host: { cpu: 'test', cores: 2, memoryGb: 24, node: 'v20', platform: 'linux x64' },
    config: { trials: 3, threads: 2, promptTokens: 266, decodeTokens: 32, describeTokens: 20, describePrompt: 'caption en' },
    files: { text: 't', textBytes: 5e9, projector: 'p', projectorBytes: 1e9, image: 'i' },
    llama: { version: '3.21.1', available: true },
    ours: {},
    limits: limitsOf([probe, { ...probe, fmaGflops: 110, readGbps: 9 }]),
    trials,
    skipped: [],
    wallSeconds: 1,
  });

  it('takes the best of the probes as the limits', () => {
    expect(report.limits).toMatchObject({ fmaGflops: 110, fmaGflopsIdeal: 120, readGbps: 10 });
  });

  it('derives ratios from the best and the median trials', () => {
    // Prefill: ours best 4 s, median 5 s; llama 10 s → ours is 2.5× / 2× as fast.
    expect(report.derived['ratio.prefillSpeed']!.best).toBeCloseTo(2.5, 12);
    expect(report.derived['ratio.prefillSpeed']!.median).toBeCloseTo(2, 12);
    // Decode: ours best 500 ms, median 600 ms; llama 1000 ms.
    expect(report.derived['ratio.decodeMs']).toEqual({ best: 0.5, median: 0.6 });
    // 5 GB per token at 10 GB/s → a 500 ms floor; ours' median 600 ms is 1.2× of it.
    expect(report.derived['decodeFloorMs']!.best).toBeCloseTo(500, 9);
    expect(report.derived['ours.decodeOverFloor']!.median).toBeCloseTo(1.2, 12);
    // Against each trial's own probe: 600 ms vs a 500 ms floor, 500 ms vs 1000 ms (trial 3 has none).
    expect(report.derived['ours.decodeOverTrialFloor']!.best).toBeCloseTo(0.5, 12);
    expect(report.derived['ours.decodeOverTrialFloor']!.median).toBeCloseTo(0.85, 12);
    expect(report.derived['llama.decodeOverTrialFloor']!.median).toBeCloseTo(1000 / 625, 12);
    expect(report.derived['ratio.loadMs']!.median).toBeCloseTo(0.25, 12);
    expect(report.derived['ours.peakRssOverFiles']!.median).toBeCloseTo(1, 12);
    expect(report.derived['ours.prefillGflops']!.median).toBeCloseTo(textPrefillFlops(266, 'prefix') / 5 / 1e9, 6);
  });

  it('judges the targets on medians and notes the failed trial', () => {
    const byName = Object.fromEntries(report.targets.map((t) => [t.name, t.pass]));
    expect(byName['text prefill speed vs llama.cpp']).toBe(false); // 2× < 2.5×
    expect(byName['decode ms vs llama.cpp']).toBe(true); // 0.6 ≤ 0.625
    expect(byName['decode vs memory floor']).toBe(false); // 1.2 > 1.15
    expect(byName['load vs llama.cpp']).toBe(true);
    // Vision: 1 s for ≈ 0.22 TFLOP is ≈ 220 GFLOP/s, above 0.75 × the ideal 120.
    expect(byName['vision tower, fraction of FP32 FMA peak (ideal)']).toBe(true);
    expect(byName['describe() end to end']).toBe(true); // 5000 ms ≤ 5500
    expect(report.notes.some((n) => n.includes('llama trial 2 failed: stalled'))).toBe(true);
    expect(report.summary.llama.prefillMs?.n).toBe(1);
  });
});

describe('compareQuantRuns (npm run bench -- --quant)', () => {
  const probe: MachineLimits = {
    threads: 2, lanes: 16, fmaGflops: 100, fmaGflops1t: 50, fmaGflopsCoreCpu: 60, readGbps: 10, readGbps1t: 8, loadBefore: 0,
  };
  const run = { wallMs: 1000, loadBefore: 0.1, loadAfter: 0.2, otherCores: 0, stealCores: 0 };
  /** A run of one weight type: our prefill, decode, vision and describe times, llama.cpp's prefill and decode, file sizes. */
  const reportOf = (o: { prefill: number; decode: number; vision: number; describe: number; llamaPrefill: number; llamaDecode: number; gb: number }) => {
    const d = { totalMs: o.describe, preprocessMs: 10, visionMs: o.vision, prefillMs: 1000, decodeMs: 900, decodeMsPerToken: 50, promptTokens: 270, generatedTokens: 20, imageCacheHit: false };
    const ours: OursResult = {
      loadMs: 100, firstCallMs: 500, prefillMs: o.prefill, decodeMsPerToken: o.decode, decodeSteps: 32, finiteLogits: true, textRssMb: 1000,
      textPeakRssMb: 1000, loadWithProjectorMs: 150, describeCold: d, describe: d, peakRssMb: 1.05 * (o.gb + 0.5) * 1000, simd: 'avx512', threads: 2, cpuSeconds: 10,
    };
    const llama: LlamaResult = {
      loadMs: 400, contextMs: 50, firstCallMs: 800, prefillMs: o.llamaPrefill, decodeMsPerToken: o.llamaDecode, decodeSteps: 32, finiteLogits: true,
      rssMb: 5300, peakRssMb: 5400, cpuSeconds: 20,
    };
    return buildReport({
      date: '2026-01-01T00:00:00.000Z',
      host: { cpu: 'test', cores: 2, memoryGb: 24, node: 'v20', platform: 'linux x64' },
      config: { trials: 1, threads: 2, promptTokens: 266, decodeTokens: 32, describeTokens: 20, describePrompt: 'caption en' },
      files: { text: 't', textBytes: o.gb * 1e9, projector: 'p', projectorBytes: 0.5e9, image: 'i' },
      llama: { version: '3.21.1', available: true },
      ours: {},
      limits: limitsOf([probe]),
      trials: [{ engine: 'ours', trial: 1, ...run, result: ours }, { engine: 'llama', trial: 1, ...run, result: llama }],
      skipped: [],
      wallSeconds: 1,
    });
  };
  const c = compareQuantRuns([
    { weights: 'f16', report: reportOf({ prefill: 30_000, decode: 600, vision: 10_000, describe: 20_000, llamaPrefill: 40_000, llamaDecode: 700, gb: 5 }) },
    { weights: 'q8_0', report: reportOf({ prefill: 10_000, decode: 300, vision: 6_000, describe: 11_000, llamaPrefill: 30_000, llamaDecode: 400, gb: 2.5 }) },
  ]);

  it('compares each type with F16 and with llama.cpp on the same file', () => {
    const q = c.rows.find((r) => r.weights === 'q8_0')!.figures;
    expect(q['prefillVsF16']!.median).toBeCloseTo(3, 12);
    expect(q['prefillVsLlama']!.median).toBeCloseTo(3, 12);
    expect(q['decodeOverFloor']!.median).toBeCloseTo(1.2, 12); // 2.5 GB at 10 GB/s: a 250 ms floor
    expect(q['decodeVsLlama']!.median).toBeCloseTo(4 / 3, 12);
    expect(q['visionVsF16']!.median).toBeCloseTo(10 / 6, 12);
    expect(q['describeVsF16']!.median).toBeCloseTo(0.55, 12);
    expect(c.rows.find((r) => r.weights === 'f16')!.figures['prefillVsF16']!.median).toBe(1);
  });

  it("judges issue 13's targets on medians, and prints them", () => {
    const byName = Object.fromEntries(c.targets.map((t) => [t.name, t.pass]));
    expect(byName['q8_0: speed vs our F16 prefill']).toBe(true);
    expect(byName['q8_0: vs its memory floor']).toBe(true);
    expect(byName['q8_0: speed vs llama.cpp, same file']).toBe(true);
    expect(byName['q8_0: time vs our F16 describe()']).toBe(true);
    expect(byName['q8_0: peak RSS / the two files']).toBe(true);
    expect(c.targets.some((t) => t.name.startsWith('q4_k_m'))).toBe(false); // no such run
    const text = formatQuantComparison(c);
    expect(text).toMatch(/^ {2}prefill 266 tokens \(ms\) +30\.00 s +10\.00 s$/m);
    expect(text).toMatch(/^ {2}PASS +q8_0: speed vs our F16 prefill +3\.00× +≥ 2\.5×/m);
  });
});
