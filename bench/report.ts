/**
 * The bench's arithmetic and output: min/median per metric over the trials, our engine against
 * llama.cpp as ratios, throughput as a fraction of the machine limits measured in the same run, the
 * issue's targets checked, a JSON report and a human summary.
 *
 * Rates are derived from times: the best figure is the fastest trial (other processes only ever slow a
 * run down), the typical one the median. Targets are judged on medians.
 */
import fs from 'node:fs';
import path from 'node:path';

import { PALIGEMMA_TEXT } from '../test/helpers/gguf-fixtures.js';
import type { ChildRun } from './child.js';
import type { LlamaResult } from './llama.js';
import type { MachineLimits } from './machine.js';
import type { OursResult } from './ours.js';

/** min / median / max of a metric over the trials that produced it. */
export interface Stats {
  n: number;
  min: number;
  median: number;
  max: number;
}

/** Stats of the finite values, or undefined when there are none. */
export function stats(values: readonly (number | undefined)[]): Stats | undefined {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { n: v.length, min: v[0]!, median, max: v[v.length - 1]! };
}

/** SigLIP So400m/14 at 224 px and its projector to the text model (docs/FORMAT.md). */
export const SIGLIP_SO400M = { imageSize: 224, patchSize: 14, hidden: 1152, ffn: 4304, blocks: 27, heads: 16, projection: 2048 } as const;

/**
 * FLOPs of a text prefill of `tokens` positions: 2 per weight per token for the projections, 4 per
 * (query, visible key, head, dim) for attention (q·k and p·v), and the output head for the last
 * position only. `prefix` is our engine (bidirectional over the whole prompt), `causal` llama.cpp.
 */
export function textPrefillFlops(tokens: number, mask: 'prefix' | 'causal'): number {
  const { hidden: h, blocks, ffn, heads, kvHeads, headDim: d, vocabSize } = PALIGEMMA_TEXT;
  const weightsPerBlock = h * heads * d + 2 * h * kvHeads * d + heads * d * h + 3 * h * ffn;
  const pairs = mask === 'prefix' ? tokens * tokens : (tokens * (tokens + 1)) / 2;
  return 2 * blocks * weightsPerBlock * tokens + 4 * blocks * heads * d * pairs + 2 * h * vocabSize;
}

/** FLOPs of the vision tower on one image: patch embedding, the blocks (full attention), the projector. */
export function visionFlops(): number {
  const { imageSize, patchSize: p, hidden: h, ffn, blocks, projection } = SIGLIP_SO400M;
  const n = (imageSize / p) ** 2;
  const weights = 3 * p * p * h + blocks * (4 * h * h + 2 * h * ffn) + h * projection;
  return 2 * n * weights + 4 * blocks * n * n * h; // heads × head dim = h
}

/**
 * One trial of one engine, as the parent saw it. `readGbpsBefore`: the read bandwidth of a probe run
 * just before the trial (the host's bandwidth drifts by up to 1.5× within minutes, so a decode is
 * also compared with the floor of its own moment).
 */
export type Trial = { readGbpsBefore?: number } & (
  | ({ engine: 'ours'; trial: number } & ChildRun<OursResult>)
  | ({ engine: 'llama'; trial: number } & ChildRun<LlamaResult>)
);

/** A metric: how to read it from a result, its unit, and whether it is a time (lower is better). */
interface Metric<R> {
  label: string;
  unit: 'ms' | 'MB' | 'tok/s';
  pick: (r: R) => number | undefined;
}

const OURS_METRICS = {
  loadMs: { label: 'load (text, warm page cache)', unit: 'ms', pick: (r) => r.loadMs },
  firstCallMs: { label: 'first call after load', unit: 'ms', pick: (r) => r.firstCallMs },
  prefillMs: { label: 'text prefill', unit: 'ms', pick: (r) => r.prefillMs },
  decodeMsPerToken: { label: 'decode per token', unit: 'ms', pick: (r) => r.decodeMsPerToken },
  textPeakRssMb: { label: 'peak RSS (text only)', unit: 'MB', pick: (r) => r.textPeakRssMb },
  loadWithProjectorMs: { label: 'load (text + projector)', unit: 'ms', pick: (r) => r.loadWithProjectorMs },
  describeColdMs: { label: 'describe(), first', unit: 'ms', pick: (r) => r.describeCold.totalMs },
  describeMs: { label: 'describe(), second', unit: 'ms', pick: (r) => r.describe.totalMs },
  describePreprocessMs: { label: '  preprocess', unit: 'ms', pick: (r) => r.describe.preprocessMs },
  visionMs: { label: '  vision tower + projector', unit: 'ms', pick: (r) => (r.describe.imageCacheHit ? undefined : r.describe.visionMs) },
  describePrefillMs: { label: '  prefill (image + prompt)', unit: 'ms', pick: (r) => r.describe.prefillMs },
  describeDecodeMsPerToken: { label: '  decode per token', unit: 'ms', pick: (r) => r.describe.decodeMsPerToken },
  peakRssMb: { label: 'peak RSS (after describe)', unit: 'MB', pick: (r) => r.peakRssMb },
} satisfies Record<string, Metric<OursResult>>;

const LLAMA_METRICS = {
  loadMs: { label: 'load (text, warm page cache)', unit: 'ms', pick: (r) => r.loadMs },
  contextMs: { label: 'context creation', unit: 'ms', pick: (r) => r.contextMs },
  firstCallMs: { label: 'first call after load', unit: 'ms', pick: (r) => r.firstCallMs },
  prefillMs: { label: 'text prefill', unit: 'ms', pick: (r) => r.prefillMs },
  decodeMsPerToken: { label: 'decode per token', unit: 'ms', pick: (r) => r.decodeMsPerToken },
  peakRssMb: { label: 'peak RSS', unit: 'MB', pick: (r) => r.peakRssMb },
} satisfies Record<string, Metric<LlamaResult>>;

type OursMetric = keyof typeof OURS_METRICS;
type LlamaMetric = keyof typeof LLAMA_METRICS;

/** What the run was given. */
export interface RunConfig {
  trials: number;
  threads: number;
  promptTokens: number;
  decodeTokens: number;
  describeTokens: number;
  describePrompt: string;
  only?: 'ours' | 'llama';
  /** The weight type of the files (F16 unless `--quant` ran a quantized copy). */
  weights?: string;
}

/** The machine's limits for this run: the best of the probes taken before and after the trials. */
export interface Limits {
  probes: MachineLimits[];
  /** Best measured FP32 FMA GFLOP/s with all threads (wall clock). */
  fmaGflops: number;
  /** threads × one core's FMA rate over its own CPU time: the peak others' load cannot hide. */
  fmaGflopsIdeal: number;
  /** Best measured read GB/s with all threads. */
  readGbps: number;
}

/** Combines the probes into the limits the fractions are taken against. */
export function limitsOf(probes: MachineLimits[]): Limits {
  const best = (f: (m: MachineLimits) => number) => Math.max(...probes.map(f));
  return {
    probes,
    fmaGflops: best((m) => m.fmaGflops),
    fmaGflopsIdeal: best((m) => m.threads * m.fmaGflopsCoreCpu),
    readGbps: best((m) => m.readGbps),
  };
}

/** A figure derived from the stats: its value from the best trials and from the medians. */
export interface Derived {
  best: number;
  median: number;
}

/** One of the issue's targets, judged on medians. */
export interface TargetCheck {
  name: string;
  value: number;
  unit: '×' | 'ms';
  target: string;
  pass: boolean;
}

/** The JSON report. */
export interface BenchReport {
  date: string;
  host: { cpu: string; cores: number; memoryGb: number; node: string; platform: string };
  config: RunConfig;
  files: { text: string; textBytes: number; projector: string; projectorBytes: number; image: string };
  llama: { version: string; available: boolean; error?: string; cpuBackend?: string };
  ours: { simd?: string; threads?: number; addon?: string };
  limits: Limits;
  trials: Trial[];
  /** Trials not run because the time budget would have been exceeded. */
  skipped: string[];
  summary: {
    ours: Partial<Record<OursMetric, Stats>>;
    llama: Partial<Record<LlamaMetric, Stats>>;
  };
  derived: Record<string, Derived>;
  targets: TargetCheck[];
  /** What else ran on the machine during the trials. */
  load: { loadBefore?: Stats; loadAfter?: Stats; otherCores?: Stats; stealCores?: Stats };
  notes: string[];
  wallSeconds: number;
}

type ReportInput = Omit<BenchReport, 'summary' | 'derived' | 'targets' | 'load' | 'notes'> & { notes?: string[] };

/** Fills in the summary, derived figures, targets, load and notes from the raw trials. */
export function buildReport(input: ReportInput): BenchReport {
  const ours = input.trials.flatMap((t) => (t.engine === 'ours' && t.result ? [t.result] : []));
  const llama = input.trials.flatMap((t) => (t.engine === 'llama' && t.result ? [t.result] : []));
  const summarize = <R, K extends string>(metrics: Record<K, Metric<R>>, results: R[]) => {
    const out: Partial<Record<K, Stats>> = {};
    for (const key of Object.keys(metrics) as K[]) {
      const s = stats(results.map(metrics[key].pick));
      if (s) out[key] = s;
    }
    return out;
  };
  const summary = { ours: summarize(OURS_METRICS, ours), llama: summarize(LLAMA_METRICS, llama) };

  const { config, limits } = input;
  const derived: Record<string, Derived> = {};
  /** A rate from a time metric: best = fastest trial, median = median time. */
  const rate = (s: Stats | undefined, perMs: number) => s && { best: perMs / s.min, median: perMs / s.median };
  const ratio = (a: Derived | undefined, b: Derived | undefined) => a && b && { best: a.best / b.best, median: a.median / b.median };
  const time = (s: Stats | undefined) => s && { best: s.min, median: s.median };
  const put = (name: string, d: Derived | undefined) => {
    if (d) derived[name] = d;
  };
  const o = summary.ours;
  const l = summary.llama;
  const n = config.promptTokens;
  const textGb = input.files.textBytes / 1e9;

  put('ours.prefillTokPerS', rate(o.prefillMs, n * 1000));
  put('llama.prefillTokPerS', rate(l.prefillMs, n * 1000));
  put('ours.prefillGflops', rate(o.prefillMs, textPrefillFlops(n, 'prefix') / 1e6));
  put('llama.prefillGflops', rate(l.prefillMs, textPrefillFlops(n, 'causal') / 1e6));
  put('ours.decodeGbps', rate(o.decodeMsPerToken, textGb * 1000));
  put('llama.decodeGbps', rate(l.decodeMsPerToken, textGb * 1000));
  put('ours.visionGflops', rate(o.visionMs, visionFlops() / 1e6));
  for (const engine of ['ours', 'llama']) {
    const g = derived[`${engine}.prefillGflops`];
    put(`${engine}.prefillFractionOfFma`, g && { best: g.best / limits.fmaGflops, median: g.median / limits.fmaGflops });
    put(`${engine}.prefillFractionOfFmaIdeal`, g && { best: g.best / limits.fmaGflopsIdeal, median: g.median / limits.fmaGflopsIdeal });
    const b = derived[`${engine}.decodeGbps`];
    put(`${engine}.decodeFractionOfRead`, b && { best: b.best / limits.readGbps, median: b.median / limits.readGbps });
  }
  const v = derived['ours.visionGflops'];
  put('ours.visionFractionOfFma', v && { best: v.best / limits.fmaGflops, median: v.median / limits.fmaGflops });
  put('ours.visionFractionOfFmaIdeal', v && { best: v.best / limits.fmaGflopsIdeal, median: v.median / limits.fmaGflopsIdeal });
  const floorMs = (textGb / limits.readGbps) * 1000;
  const decodeFloor = { best: floorMs, median: floorMs };
  put('decodeFloorMs', decodeFloor);
  put('ours.decodeOverFloor', ratio(time(o.decodeMsPerToken), decodeFloor));
  // Each trial's decode against the floor from the probe run just before it.
  for (const engine of ['ours', 'llama'] as const) {
    const each = input.trials.flatMap((t) =>
      t.engine === engine && t.result && t.readGbpsBefore ? [t.result.decodeMsPerToken / ((textGb / t.readGbpsBefore) * 1000)] : []);
    const s = stats(each);
    put(`${engine}.decodeOverTrialFloor`, s && { best: s.min, median: s.median });
  }
  put('ratio.prefillSpeed', ratio(derived['ours.prefillTokPerS'], derived['llama.prefillTokPerS']));
  put('ratio.decodeMs', ratio(time(o.decodeMsPerToken), time(l.decodeMsPerToken)));
  put('ratio.loadMs', ratio(time(o.loadMs), time(l.loadMs)));
  put('ratio.peakRss', ratio(time(o.textPeakRssMb), time(l.peakRssMb)));
  const filesMb = (input.files.textBytes + input.files.projectorBytes) / 1e6;
  put('ours.peakRssOverFiles', ratio(time(o.peakRssMb), { best: filesMb, median: filesMb }));

  const targets: TargetCheck[] = [];
  const target = (name: string, d: Derived | undefined, text: string, ok: (x: number) => boolean, unit: TargetCheck['unit'] = '×') => {
    if (d) targets.push({ name, value: d.median, unit, target: text, pass: ok(d.median) });
  };
  target('text prefill speed vs llama.cpp', derived['ratio.prefillSpeed'], '≥ 2.5×', (x) => x >= 2.5);
  // Against the ideal peak: the wall-clock probe drops below it whenever another process runs.
  target('text prefill, fraction of FP32 FMA peak (ideal)', derived['ours.prefillFractionOfFmaIdeal'], '≥ 0.75×', (x) => x >= 0.75);
  target('decode vs memory floor', derived['ours.decodeOverFloor'], '≤ 1.15×', (x) => x <= 1.15);
  target('decode ms vs llama.cpp', derived['ratio.decodeMs'], '≤ 0.625× (≥ 1.6× faster)', (x) => x <= 1 / 1.6);
  target('vision tower, fraction of FP32 FMA peak (ideal)', derived['ours.visionFractionOfFmaIdeal'], '≥ 0.75×', (x) => x >= 0.75);
  target('load vs llama.cpp', derived['ratio.loadMs'], '≤ 0.5×', (x) => x <= 0.5);
  target('peak RSS after load + describe vs file sizes', derived['ours.peakRssOverFiles'], '≤ 1.10×', (x) => x <= 1.1);
  target('describe() end to end', time(o.describeMs), '≤ 5.5 s', (x) => x <= 5500, 'ms');

  const ran = input.trials.filter((t) => t.result);
  const load = {
    loadBefore: stats(ran.map((t) => t.loadBefore)),
    loadAfter: stats(ran.map((t) => t.loadAfter)),
    otherCores: stats(ran.map((t) => t.otherCores)),
    stealCores: stats(ran.map((t) => t.stealCores)),
  };
  const notes = [...(input.notes ?? [])];
  const busy = load.otherCores?.median ?? 0;
  if (busy > 0.2 || (load.loadBefore?.median ?? 0) > 1.5) {
    notes.push(
      `The machine was busy: other processes used ${busy.toFixed(2)} of ${input.host.cores} cores on average during the trials ` +
        `(1-min load average ${load.loadBefore?.min.toFixed(1)}–${load.loadBefore?.max.toFixed(1)}). Both engines run 2 threads ` +
        'with barriers, which a busy core slows badly: absolute figures are pessimistic and ratios noisy.',
    );
  }
  for (const t of input.trials) if (t.error) notes.push(`${t.engine} trial ${t.trial} failed: ${t.error}`);
  if (ours.some((r) => !r.finiteLogits)) notes.push('ours: NON-FINITE logits on the random-weight model');
  if (llama.some((r) => !r.finiteLogits)) notes.push('llama.cpp: NON-FINITE probabilities on the random-weight model');
  if (ours.some((r) => r.describe.imageCacheHit)) notes.push('ours: the second describe() hit the image cache; its vision time is not the tower');
  return { ...input, summary, derived, targets, load, notes };
}

/** Writes the report as `<dir>/<date>.json` and returns the path. */
export function writeReport(dir: string, report: BenchReport): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${report.date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`);
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  return file;
}

const fmt = (x: number | undefined, unit: string): string => {
  if (x === undefined || !Number.isFinite(x)) return '—';
  if (unit === 'ms') return x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x >= 100 ? 0 : 1)} ms`;
  if (unit === 'MB') return `${(x / 1000).toFixed(2)} GB`;
  if (unit === '×') return `${x.toFixed(x < 10 ? 3 : 1)}×`;
  if (unit === '%') return `${(100 * x).toFixed(0)}%`;
  return `${x.toFixed(x >= 100 ? 0 : 1)} ${unit}`;
};
const minMed = (s: Stats | undefined, unit: string) => (s ? `${fmt(s.min, unit)} / ${fmt(s.median, unit)}` : '—');
const pair = (d: Derived | undefined, unit: string) => (d ? `${fmt(d.best, unit)} / ${fmt(d.median, unit)}` : '—');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => '  ' + r.map((cell, c) => cell.padEnd(widths[c]!)).join('   ').trimEnd()).join('\n');
}

/** The human summary of a report. */
export function formatSummary(r: BenchReport): string {
  const { summary: s, derived: d, limits } = r;
  const out: string[] = [];
  out.push(`paligemma bench — ${r.date}, ${r.host.cpu}, ${r.config.threads} threads, ${r.config.trials} trial(s) per engine`);
  out.push(
    `machine limits (best of ${limits.probes.length} probes this run): FP32 FMA ${limits.fmaGflops.toFixed(0)} GFLOP/s measured, ` +
      `${limits.fmaGflopsIdeal.toFixed(0)} ideal (${r.config.threads} × one core's rate over its CPU time); memory read ${limits.readGbps.toFixed(1)} GB/s`,
  );
  const ld = r.load;
  if (ld.loadBefore)
    out.push(
      `other load: 1-min load average ${ld.loadBefore.min.toFixed(1)}–${ld.loadBefore.max.toFixed(1)} before trials; ` +
        `other processes used ${ld.otherCores?.median.toFixed(2) ?? '?'} cores (median, max ${ld.otherCores?.max.toFixed(2) ?? '?'}), steal ${ld.stealCores?.median.toFixed(2) ?? '?'}`,
    );
  out.push(`llama.cpp: ${r.llama.available ? `node-llama-cpp@${r.llama.version}, CPU backend ${r.llama.cpuBackend ?? '?'}` : `not run (${r.llama.error ?? 'skipped'})`}`);
  out.push(`ours: SIMD ${r.ours.simd ?? '?'}, ${r.ours.threads ?? '?'} threads${r.ours.addon ? `, addon ${r.ours.addon}` : ''}`);
  out.push('');
  out.push(`text model (${(r.files.textBytes / 1e9).toFixed(2)} GB, ${r.config.weights ?? 'F16'}), ${r.config.promptTokens}-token prompt, ${r.config.decodeTokens} decode steps — min / median`);
  const rows = [['', 'ours', 'llama.cpp', 'ours / llama (best / median)']];
  rows.push(['load (warm page cache)', minMed(s.ours.loadMs, 'ms'), minMed(s.llama.loadMs, 'ms'), pair(d['ratio.loadMs'], '×')]);
  rows.push(['first call after load', minMed(s.ours.firstCallMs, 'ms'), minMed(s.llama.firstCallMs, 'ms'), '']);
  rows.push(['prefill', minMed(s.ours.prefillMs, 'ms'), minMed(s.llama.prefillMs, 'ms'), '']);
  rows.push(['prefill speed (best / median)', pair(d['ours.prefillTokPerS'], 'tok/s'), pair(d['llama.prefillTokPerS'], 'tok/s'), pair(d['ratio.prefillSpeed'], '×')]);
  rows.push(['  GFLOP/s', pair(d['ours.prefillGflops'], 'GFLOP/s'), pair(d['llama.prefillGflops'], 'GFLOP/s'), '']);
  rows.push(['  of FMA peak (measured)', pair(d['ours.prefillFractionOfFma'], '%'), pair(d['llama.prefillFractionOfFma'], '%'), '']);
  rows.push(['  of FMA peak (ideal)', pair(d['ours.prefillFractionOfFmaIdeal'], '%'), pair(d['llama.prefillFractionOfFmaIdeal'], '%'), '']);
  rows.push(['decode per token', minMed(s.ours.decodeMsPerToken, 'ms'), minMed(s.llama.decodeMsPerToken, 'ms'), pair(d['ratio.decodeMs'], '×')]);
  rows.push(['  GB/s (file per token)', pair(d['ours.decodeGbps'], 'GB/s'), pair(d['llama.decodeGbps'], 'GB/s'), '']);
  rows.push(['  of memory read limit', pair(d['ours.decodeFractionOfRead'], '%'), pair(d['llama.decodeFractionOfRead'], '%'), '']);
  rows.push(['peak RSS (text only)', minMed(s.ours.textPeakRssMb, 'MB'), minMed(s.llama.peakRssMb, 'MB'), pair(d['ratio.peakRss'], '×')]);
  out.push(table(rows));
  out.push(`  decode floor (file size / read limit): ${fmt(d['decodeFloorMs']?.best, 'ms')}; ours at ${pair(d['ours.decodeOverFloor'], '×')} of it`);
  if (d['ours.decodeOverTrialFloor'] || d['llama.decodeOverTrialFloor'])
    out.push(`  each trial against the floor of a read probe run just before it (best / median): ours ${pair(d['ours.decodeOverTrialFloor'], '×')}, llama.cpp ${pair(d['llama.decodeOverTrialFloor'], '×')}`);
  out.push('');
  out.push(`ours with the projector (${(r.files.projectorBytes / 1e9).toFixed(2)} GB): describe() of a 224×224 PNG, "${r.config.describePrompt}", ${r.config.describeTokens} tokens — min / median`);
  const ours = [['', 'min / median']];
  for (const key of ['loadWithProjectorMs', 'describeColdMs', 'describeMs', 'describePreprocessMs', 'visionMs', 'describePrefillMs', 'describeDecodeMsPerToken', 'peakRssMb'] as const)
    ours.push([OURS_METRICS[key].label, minMed(s.ours[key], OURS_METRICS[key].unit)]);
  ours.push(['vision GFLOP/s (best / median)', pair(d['ours.visionGflops'], 'GFLOP/s')]);
  ours.push(['  of FMA peak (measured)', pair(d['ours.visionFractionOfFma'], '%')]);
  ours.push(['  of FMA peak (ideal)', pair(d['ours.visionFractionOfFmaIdeal'], '%')]);
  ours.push(['peak RSS / file sizes (best / median)', pair(d['ours.peakRssOverFiles'], '×')]);
  out.push(table(ours));
  if (r.targets.length > 0) {
    out.push('');
    out.push('targets (issue 6, on medians):');
    out.push(table(r.targets.map((t) => [t.pass ? 'PASS' : 'MISS', t.name, fmt(t.value, t.unit), t.target])));
  }
  if (r.skipped.length > 0) out.push('', `skipped (time budget): ${r.skipped.join(', ')}`);
  if (r.notes.length > 0) out.push('', ...r.notes.map((n) => `note: ${n}`));
  return out.join('\n');
}
