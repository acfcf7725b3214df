/**
 * Matrix kernel benchmark: measures the machine's limits (bench/machine.cc) and, in the same run,
 * GEMM GFLOP/s on PaliGemma's real shapes and GEMV GB/s on the decode shapes, all with F16 weights,
 * then GEMV GB/s on the text model's decode shapes with quantized weights (the types of the q8_0 and
 * q4_k_m files), printed as absolute figures and as fractions of the measured limits, for each SIMD
 * variant.
 *
 *   node --import tsx bench/matmul.ts [--repeat N] [--simd avx2,avx512] [--quant q4_k,q6_k,q8_0|none] [--json out.json]
 *
 * --simd takes a comma-separated list (default: every variant the CPU supports but scalar). The
 * kernels run the way the model's layer loops call them: back to back inside native code
 * (timeMatmul), with no JS call, output allocation or idle pool between runs. After one warm-up run
 * per variant, each GEMM shape runs N rounds (default 5; GEMV shapes at least 50), each round one
 * run of every variant in turn, so that the variants share whatever else the machine is doing; the
 * best and the median run are reported: the machine may be shared, and other processes only ever
 * make a run slower. The load average is printed alongside. Besides wall-clock rates, GEMM also
 * reports GFLOP/s per CPU-second of the process (over all N runs) against one core's peak over its
 * own CPU time — a figure other processes disturb much less — and, with several variants, each
 * variant's median time against the first's. --quant picks the quantized weight types (default: all
 * three; `none` skips them): their weights are 1024 rows quantized by the reference quantizer, repeated
 * to fill each matrix (the kernels' speed does not depend on the values).
 */
import fs from 'node:fs';
import os from 'node:os';
import { poolSize, timeMatmul, type MatmulArgs } from '../test/helpers/kernels/matmul.js';
import { checkSimdVariant, simdVariants, type SimdVariantName } from '../lib/native.js';
import { QUANT_TYPES, quantizeRows } from '../test/helpers/quant-ref.js';
import { measureMachine, type MachineLimits } from './machine.js';

/** The quantized weight types the bench knows: the kernel's name and the block layout's. */
const QUANT_WEIGHTS = { q8_0: 'Q8_0', q4_k: 'Q4_K', q6_k: 'Q6_K' } as const;
type QuantWeight = keyof typeof QUANT_WEIGHTS;

interface Options {
  repeat: number;
  simd?: SimdVariantName[];
  quant: QuantWeight[];
  json?: string;
}

function parseQuant(list: string): QuantWeight[] {
  if (list === 'none') return [];
  return list.split(',').map((t) => {
    if (!(t in QUANT_WEIGHTS)) throw new Error(`--quant: unknown type ${t} (${Object.keys(QUANT_WEIGHTS).join(', ')} or none)`);
    return t as QuantWeight;
  });
}

function parseArgs(argv: string[]): Options {
  const o: Options = { repeat: 5, quant: ['q4_k', 'q6_k', 'q8_0'] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--repeat') o.repeat = Math.max(1, Number(argv[++i]));
    else if (a === '--simd') o.simd = (argv[++i] ?? '').split(',').map(checkSimdVariant);
    else if (a === '--quant') o.quant = parseQuant(argv[++i] ?? '');
    else if (a === '--json') o.json = argv[++i];
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

/** Random F16 bit patterns of magnitude in [2^-7, 1), either sign (finite, no subnormals). */
function randomF16(count: number, seed: number): Uint16Array {
  const out = new Uint16Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = 0x2000 + ((s >>> 8) % 0x1c00) + (s & 0x80000000 ? 0x8000 : 0);
  }
  return out;
}

function randomX(count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.random() * 2 - 1;
  return out;
}

interface Timing {
  /** Best and median wall time of one run, seconds. */
  wall: number;
  median: number;
  /** Process CPU seconds per run, over all the runs. */
  cpu: number;
}

/**
 * Times `kind` on each args (one per variant): a warm-up run each (pages in the weights, grows the
 * scratch buffers), then `repeat` rounds of one run of each in turn.
 */
function timeRuns(kind: 'gemm' | 'gemv', repeat: number, variants: MatmulArgs[]): Timing[] {
  for (const args of variants) timeMatmul(kind, 1, args);
  const ms = variants.map(() => [] as number[]);
  const cpu = variants.map(() => 0);
  for (let r = 0; r < repeat; r++) {
    variants.forEach((args, v) => {
      const c0 = process.cpuUsage();
      ms[v]!.push(timeMatmul(kind, 1, args)[0]!);
      const c = process.cpuUsage(c0);
      cpu[v]! += (c.user + c.system) / 1e6;
    });
  }
  return ms.map((runs, v) => {
    runs.sort((a, b) => a - b);
    return { wall: runs[0]! / 1000, median: runs[Math.floor(repeat / 2)]! / 1000, cpu: cpu[v]! / repeat };
  });
}

interface GemmResult {
  shape: string;
  simd: SimdVariantName;
  n: number;
  k: number;
  m: number;
  gflops: number;
  ofPeak: number;
  gflopsPerCore: number;
  ofCorePeak: number;
  ms: number;
  medianMs: number;
}

interface GemvResult {
  shape: string;
  wtype: string;
  simd: SimdVariantName;
  gbps: number;
  ofBandwidth: number;
  ms: number;
  medianMs: number;
}

const gemmShapes: [string, number, number, number][] = [
  ['text q/o proj', 266, 2048, 2048],
  ['text k/v proj', 266, 2048, 256],
  ['text ffn gate/up', 266, 2048, 16384],
  ['text ffn down', 266, 16384, 2048],
  ['vision qkv/o', 256, 1152, 1152],
  ['vision mlp up', 256, 1152, 4304],
  ['vision mlp down', 256, 4304, 1152],
];

const gemvShapes: [string, number, number][] = [
  ['ffn gate/up row', 2048, 16384],
  ['output (tied embeddings)', 2048, 257216],
];

/** The text model's decode GEMVs (k -> m). */
const quantGemvShapes: [string, number, number][] = [
  ['attn q/o', 2048, 2048],
  ['attn k/v', 2048, 256],
  ['ffn gate/up', 2048, 16384],
  ['ffn down', 16384, 2048],
  ['output (tied embeddings)', 2048, 257216],
];

/** m rows of k elements of `type`: `distinct` rows quantized by the reference quantizer, repeated. */
async function quantizedWeights(type: QuantWeight, k: number, m: number, distinct = 1024): Promise<Uint8Array> {
  const layout = QUANT_TYPES[QUANT_WEIGHTS[type]];
  const rowBytes = (k / layout.block) * layout.bytes;
  const rows = Math.min(distinct, m);
  const some = await quantizeRows(QUANT_WEIGHTS[type], randomX(rows * k), k);
  const out = new Uint8Array(rowBytes * m);
  for (let j = 0; j < m; j += rows) out.set(some.subarray(0, Math.min(rows, m - j) * rowBytes), j * rowBytes);
  return out;
}

/** Prints one GEMV table (rows of one shape, one per variant) and returns its results. */
function reportGemv(title: string, shapes: [string, number, number][], wtype: string, bytesPerElement: number,
  times: Timing[][], simd: SimdVariantName[], readGbps: number): GemvResult[] {
  const results: GemvResult[] = [];
  console.log(`\nGEMV, ${title.padEnd(22)}k       m  simd        GB/s  of read bw   best ms  median ms`);
  shapes.forEach(([name, k, m], i) => {
    let first: GemvResult | undefined;
    simd.forEach((v, j) => {
      const t = times[i]![j]!;
      const bytes = bytesPerElement * k * m;
      const r: GemvResult = {
        shape: name, wtype, simd: v,
        gbps: bytes / t.wall / 1e9,
        ofBandwidth: bytes / t.wall / 1e9 / readGbps,
        ms: t.wall * 1000,
        medianMs: t.median * 1000,
      };
      results.push(r);
      const shape = j === 0 ? `${name.padEnd(28)} ${String(k).padStart(6)} ${String(m).padStart(7)}` : ''.padEnd(43);
      console.log(`${shape}  ${v.padEnd(7)}${r.gbps.toFixed(1).padStart(7)}  ${(100 * r.ofBandwidth).toFixed(0).padStart(9)}%` +
        `  ${r.ms.toFixed(1).padStart(8)}  ${r.medianMs.toFixed(1).padStart(9)}${versusFirst(r.medianMs, first)}`);
      first ??= r;
    });
  });
  return results;
}

/** " ×1.23 vs avx2": the first variant's median time over this one's (> 1: this one is faster). */
function versusFirst(median: number, first: { medianMs: number; simd: string } | undefined): string {
  return first ? ` ×${(first.medianMs / median).toFixed(2)} vs ${first.simd}` : '';
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const threads = poolSize();
  const simd = opts.simd ?? simdVariants().filter((v) => v.supported && v.name !== 'scalar').map((v) => v.name);
  console.log(`# matmul bench: ${simd.join(', ')}, ${threads} threads, ${os.cpus()[0]?.model ?? 'unknown CPU'}`);
  console.log(`# load average before: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  // The limits are measured before and after the kernels and the better of the two kept: other
  // processes only ever lower a measurement, so this keeps the ratios conservative.
  const before = measureMachine(threads);

  const gemmTimes = gemmShapes.map(([, n, k, m]) => {
    const x = randomX(n * k), w = randomF16(m * k, n + k + m);
    return timeRuns('gemm', opts.repeat, simd.map((v) => ({ x, w, wtype: 'f16', n, k, m, simd: v })));
  });
  const gemvTimes = gemvShapes.map(([, k, m]) => {
    const x = randomX(k), w = randomF16(m * k, k + m);
    // A few ms each: more runs are cheap.
    return timeRuns('gemv', Math.max(opts.repeat, 50), simd.map((v) => ({ x, w, wtype: 'f16', n: 1, k, m, simd: v })));
  });
  const quantTimes: Timing[][][] = [];
  for (const type of opts.quant) {
    const perShape: Timing[][] = [];
    for (const [, k, m] of quantGemvShapes) {
      const x = randomX(k), w = await quantizedWeights(type, k, m);
      perShape.push(timeRuns('gemv', Math.max(opts.repeat, 50), simd.map((v) => ({ x, w, wtype: type, n: 1, k, m, simd: v }))));
    }
    quantTimes.push(perShape);
  }

  const after = measureMachine(threads);
  const machine: MachineLimits = {
    ...after,
    fmaGflops: Math.max(before.fmaGflops, after.fmaGflops),
    fmaGflops1t: Math.max(before.fmaGflops1t, after.fmaGflops1t),
    fmaGflopsCoreCpu: Math.max(before.fmaGflopsCoreCpu, after.fmaGflopsCoreCpu),
    readGbps: Math.max(before.readGbps, after.readGbps),
    readGbps1t: Math.max(before.readGbps1t, after.readGbps1t),
    loadBefore: before.loadBefore,
  };
  console.log(`# machine (best of before/after): FMA peak ${machine.fmaGflops.toFixed(1)} GFLOP/s (${threads} threads; ` +
    `${before.fmaGflops.toFixed(1)} before, ${after.fmaGflops.toFixed(1)} after), ${machine.fmaGflops1t.toFixed(1)} ` +
    `(1 thread), ${machine.fmaGflopsCoreCpu.toFixed(1)} per core over CPU time; read ${machine.readGbps.toFixed(1)} GB/s ` +
    `(${threads} threads; ${before.readGbps.toFixed(1)} before, ${after.readGbps.toFixed(1)} after), ` +
    `${machine.readGbps1t.toFixed(1)} (1 thread), best with ${after.readStreams ?? '?'} streams per thread`);

  const gemmResults: GemmResult[] = [];
  console.log('\nGEMM, F16 weights          n      k      m  simd     GFLOP/s  of peak   per-core  of core   best ms  median ms');
  gemmShapes.forEach(([name, n, k, m], i) => {
    let first: GemmResult | undefined;
    simd.forEach((v, j) => {
      const t = gemmTimes[i]![j]!;
      const flop = 2 * n * k * m;
      const r: GemmResult = {
        shape: name, simd: v, n, k, m,
        gflops: flop / t.wall / 1e9,
        ofPeak: flop / t.wall / 1e9 / machine.fmaGflops,
        gflopsPerCore: flop / t.cpu / 1e9,
        ofCorePeak: flop / t.cpu / 1e9 / machine.fmaGflopsCoreCpu,
        ms: t.wall * 1000,
        medianMs: t.median * 1000,
      };
      gemmResults.push(r);
      const shape = j === 0 ? `${name.padEnd(22)} ${String(n).padStart(6)} ${String(k).padStart(6)} ${String(m).padStart(6)}` : ''.padEnd(43);
      console.log(`${shape}  ${v.padEnd(7)}${r.gflops.toFixed(1).padStart(7)}  ${(100 * r.ofPeak).toFixed(0).padStart(5)}%` +
        `   ${r.gflopsPerCore.toFixed(1).padStart(7)}  ${(100 * r.ofCorePeak).toFixed(0).padStart(5)}%` +
        `  ${r.ms.toFixed(1).padStart(8)}  ${r.medianMs.toFixed(1).padStart(9)}${versusFirst(r.medianMs, first)}`);
      first ??= r;
    });
  });

  const gemvResults = reportGemv('F16 weights, n = 1  ', gemvShapes, 'f16', 2, gemvTimes, simd, machine.readGbps);
  opts.quant.forEach((type, t) => {
    const layout = QUANT_TYPES[QUANT_WEIGHTS[type]];
    gemvResults.push(...reportGemv(`${type}, n = 1`.padEnd(20), quantGemvShapes, type, layout.bytes / layout.block, quantTimes[t]!, simd,
      machine.readGbps));
  });
  console.log(`\n# load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  if (opts.json) {
    const report = { simd, threads, loadavg: os.loadavg(), machine, before, after, gemm: gemmResults,
      gemv: gemvResults };
    fs.writeFileSync(opts.json, JSON.stringify(report, null, 2));
  }
}

await main();
