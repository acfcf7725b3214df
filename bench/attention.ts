/**
 * Attention throughput on PaliGemma's shapes: text prefill (266 positions × 8 query heads sharing
 * 1 KV head × 256 dims, prefix mask over all 266), the vision tower (256 patches × 16 heads × 72
 * dims, full mask) and one decode step (1 query over 266 cached keys).
 *
 *   node --import tsx bench/attention.ts [--simd avx2,avx512] [--reps 20]
 *
 * GFLOP/s counts 4 flops per (query, visible key, head, dim): 2 for q·k, 2 for p·v. The machine is
 * shared and noisy, so every case is repeated, one run of each variant in turn per round (the
 * variants share whatever else the machine does), and the best and the median time reported.
 */
import { simdVariants, type SimdVariantName } from '../lib/native.js';
import { attention, type AttentionShape } from '../test/helpers/kernels/ops.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const reps = Number(arg('reps') ?? 20);
const only = arg('simd');
const variants: SimdVariantName[] = simdVariants()
  .filter((v) => v.supported && (!only || only.split(',').includes(v.name)))
  .map((v) => v.name);

const cases: { name: string; shape: AttentionShape }[] = [
  { name: 'text prefill 266x266, 8:1 heads, d256, prefix 266',
    shape: { nQ: 266, nKv: 266, nHeads: 8, nKvHeads: 1, headDim: 256, mask: 'prefix', prefixLen: 266 } },
  { name: 'vision 256x256, 16 heads, d72, full',
    shape: { nQ: 256, nKv: 256, nHeads: 16, nKvHeads: 16, headDim: 72, mask: 'full' } },
  { name: 'decode 1 query over 266 keys, 8:1 heads, d256',
    shape: { nQ: 1, nKv: 266, nHeads: 8, nKvHeads: 1, headDim: 256, mask: 'causal', qPos0: 265 } },
];

/** Flops of one call: 4 per (query, visible key, head, dim). */
function flops(s: AttentionShape): number {
  let pairs = 0;
  for (let i = 0; i < s.nQ; i++) {
    const pos = (s.qPos0 ?? 0) + i;
    const visible = s.mask === 'full' ? s.nKv
      : s.mask === 'causal' ? pos + 1 : Math.max(s.prefixLen ?? 0, pos + 1);
    pairs += Math.min(visible, s.nKv);
  }
  return 4 * pairs * s.nHeads * s.headDim;
}

function random(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return a;
}

for (const { name, shape } of cases) {
  const q = random(shape.nQ * shape.nHeads * shape.headDim);
  const k = random(shape.nKv * shape.nKvHeads * shape.headDim);
  const v = random(shape.nKv * shape.nKvHeads * shape.headDim);
  const work = flops(shape);
  // Short calls (decode) run in batches so the timer resolution does not matter.
  const inner = (simd: SimdVariantName): number => Math.max(1, Math.round(2e8 / work / (simd === 'scalar' ? 10 : 1)));
  const times = new Map<SimdVariantName, number[]>();
  for (const simd of variants) {
    attention(q, k, v, shape, simd); // warm up
    times.set(simd, []);
  }
  for (let r = 0; r < reps; r++) {
    for (const simd of variants) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < inner(simd); i++) attention(q, k, v, shape, simd);
      times.get(simd)!.push(Number(process.hrtime.bigint() - t0) / 1e9 / inner(simd));
    }
  }
  for (const simd of variants) {
    const t = times.get(simd)!.sort((a, b) => a - b);
    const best = t[0]!, median = t[Math.floor(t.length / 2)]!;
    console.log(`${name.padEnd(52)} ${simd.padEnd(7)} best ${(best * 1e3).toFixed(3).padStart(8)} ms ` +
      `${(work / best / 1e9).toFixed(1).padStart(6)} GFLOP/s, median ${(median * 1e3).toFixed(3).padStart(8)} ms ` +
      `${(work / median / 1e9).toFixed(1).padStart(6)} GFLOP/s`);
  }
}
