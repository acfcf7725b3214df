/**
 * `npm run bench -- --quant q8_0,q4_k_m`: the F16 run and each quantized one side by side, and issue 13's
 * targets, judged on medians. Each weight type's own report (bench/report.ts) comes from the same trials;
 * this compares them.
 */
import type { BenchReport, Derived, Stats, TargetCheck } from './report.js';

/** One weight type's run: `f16` or a quantization mix. */
export interface WeightRun {
  weights: string;
  report: BenchReport;
}

/** A comparison of the runs, by weight type: each figure from medians (and from the best trials). */
export interface QuantComparison {
  rows: { weights: string; figures: Record<string, Derived | undefined> }[];
  targets: TargetCheck[];
}

/** What each figure is, in the order printed. */
const FIGURES: Record<string, string> = {
  textGb: 'text file (GB)',
  projectorGb: 'projector file (GB)',
  prefillMs: 'prefill 266 tokens (ms)',
  prefillVsF16: '  speed vs our F16 prefill',
  prefillVsLlama: '  speed vs llama.cpp, same file',
  decodeMs: 'decode per token (ms)',
  decodeOverFloor: '  vs its memory floor',
  decodeVsLlama: '  speed vs llama.cpp, same file',
  visionMs: 'vision tower + projector (ms)',
  visionVsF16: '  speed vs our F16 tower',
  describeMs: 'describe(), 20 tokens (ms)',
  describeVsF16: '  time vs our F16 describe()',
  peakRssOverFiles: 'peak RSS / the two files',
};

const median = (s: Stats | undefined): Derived | undefined => s && { best: s.min, median: s.median };
const constant = (x: number): Derived => ({ best: x, median: x });
/** a / b, best and median apart (of times: how many times faster b is). */
const ratio = (a: Derived | undefined, b: Derived | undefined) => (a && b ? { best: a.best / b.best, median: a.median / b.median } : undefined);

/** The side-by-side figures and the targets of the quantized runs. */
export function compareQuantRuns(runs: WeightRun[]): QuantComparison {
  const f16 = runs.find((r) => r.weights === 'f16')?.report;
  const time = (r: BenchReport | undefined, pick: (s: BenchReport['summary']) => Stats | undefined) => (r ? median(pick(r.summary)) : undefined);
  const rows = runs.map(({ weights, report: r }) => {
    const prefill = time(r, (s) => s.ours.prefillMs);
    const decode = time(r, (s) => s.ours.decodeMsPerToken);
    const vision = time(r, (s) => s.ours.visionMs);
    const describe = time(r, (s) => s.ours.describeMs);
    const figures: Record<string, Derived | undefined> = {
      textGb: constant(r.files.textBytes / 1e9),
      projectorGb: constant(r.files.projectorBytes / 1e9),
      prefillMs: prefill,
      prefillVsF16: ratio(time(f16, (s) => s.ours.prefillMs), prefill),
      prefillVsLlama: ratio(time(r, (s) => s.llama.prefillMs), prefill),
      decodeMs: decode,
      decodeOverFloor: r.derived['ours.decodeOverFloor'],
      decodeVsLlama: ratio(time(r, (s) => s.llama.decodeMsPerToken), decode),
      visionMs: vision,
      visionVsF16: ratio(time(f16, (s) => s.ours.visionMs), vision),
      describeMs: describe,
      describeVsF16: ratio(describe, time(f16, (s) => s.ours.describeMs)),
      peakRssOverFiles: r.derived['ours.peakRssOverFiles'],
    };
    return { weights, figures };
  });

  const targets: TargetCheck[] = [];
  const target = (weights: string, key: string, text: string, ok: (x: number) => boolean) => {
    const d = rows.find((r) => r.weights === weights)?.figures[key];
    if (d) targets.push({ name: `${weights}: ${FIGURES[key]!.trim()}`, value: d.median, unit: '×', target: text, pass: ok(d.median) });
  };
  // Issue 13, on this machine (AVX-512 VNNI where the CPU has it).
  target('q8_0', 'prefillVsF16', '≥ 2.5× (with VNNI; 1.4× with AVX2)', (x) => x >= 2.5);
  target('q8_0', 'prefillVsLlama', '≥ 2.5×', (x) => x >= 2.5);
  target('q8_0', 'decodeOverFloor', '≤ 1.2×', (x) => x <= 1.2);
  target('q4_k_m', 'decodeOverFloor', '≤ 1.3×', (x) => x <= 1.3);
  for (const weights of ['q8_0', 'q4_k_m']) target(weights, 'decodeVsLlama', '≥ 1.2×', (x) => x >= 1.2);
  target('q8_0', 'visionVsF16', '≥ 1.4×', (x) => x >= 1.4);
  target('q8_0', 'describeVsF16', '≤ 0.6×', (x) => x <= 0.6);
  for (const { weights } of rows) if (weights !== 'f16') target(weights, 'peakRssOverFiles', '≤ 1.10×', (x) => x <= 1.1);
  return { rows, targets };
}

const fmt = (x: number | undefined, key: string): string => {
  if (x === undefined || !Number.isFinite(x)) return '—';
  if (key.endsWith('Ms')) return x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x >= 100 ? 0 : 1)} ms`;
  if (key.endsWith('Gb')) return `${x.toFixed(2)}`;
  return `${x.toFixed(2)}×`;
};

/** The comparison as text: one column per weight type (median, best in parentheses), then the targets. */
export function formatQuantComparison(c: QuantComparison): string {
  const header = ['', ...c.rows.map((r) => r.weights.toUpperCase())];
  const lines = Object.entries(FIGURES).map(([key, label]) => [
    label,
    ...c.rows.map((r) => {
      const d = r.figures[key];
      if (!d) return '—';
      return d.best === d.median ? fmt(d.median, key) : `${fmt(d.median, key)} (${fmt(d.best, key)})`;
    }),
  ]);
  const table = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const out = ['weight types side by side — medians (best trial in parentheses); llama.cpp on the same files:'];
  out.push(...table.map((row) => '  ' + row.map((cell, i) => cell.padEnd(widths[i]!)).join('   ').trimEnd()));
  if (c.targets.length > 0) {
    out.push('', 'targets (issue 13, on medians):');
    const t = c.targets.map((x) => [x.pass ? 'PASS' : 'MISS', x.name, fmt(x.value, ''), x.target]);
    const w = [0, 1, 2, 3].map((i) => Math.max(...t.map((row) => row[i]!.length)));
    out.push(...t.map((row) => '  ' + row.map((cell, i) => cell.padEnd(w[i]!)).join('   ').trimEnd()));
  }
  return out.join('\n');
}
