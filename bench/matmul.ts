/**
 * Matrix kernel benchmark: measures the machine's limits (bench/machine.cc) and, in the same run,
 * GEMM GFLOP/s on PaliGemma's real shapes and GEMV GB/s on the decode shapes, all with F16 weights,
 * printed as absolute figures and as fractions of the measured limits.
 *
 *   node --import tsx bench/matmul.ts [--repeat N] [--simd avx2] [--json out.json]
 *
 * The kernels run the way the model's layer loops call them: back to back inside native code
 * (timeMatmul), with no JS call, output allocation or idle pool between runs. After one warm-up run,
 * each GEMM shape runs N times (default 5; GEMV shapes at least 50) and the best and the median run
 * are reported: the machine may be shared, and other processes only ever make a run slower. The
 * load average is printed alongside. Besides wall-clock rates, GEMM also reports GFLOP/s per
 * CPU-second of the process (over all N runs) against one core's peak over its own CPU time — a
 * figure other processes disturb much less.
 */
import fs from 'node:fs';
import os from 'node:os';
import { poolSize, timeMatmul, type MatmulArgs } from '../test/helpers/kernels/matmul.js';
import { simdVariant, type SimdVariantName } from '../lib/native.js';
import { measureMachine, type MachineLimits } from './machine.js';

interface Options {
  repeat: number;
  simd?: SimdVariantName;
  json?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { repeat: 5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--repeat') o.repeat = Math.max(1, Number(argv[++i]));
    else if (a === '--simd') o.simd = argv[++i] as SimdVariantName;
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

function timeRuns(kind: 'gemm' | 'gemv', repeat: number, args: MatmulArgs): Timing {
  timeMatmul(kind, 1, args); // warm-up: page in the weights, grow the scratch buffers
  const c0 = process.cpuUsage();
  const ms = Array.from(timeMatmul(kind, repeat, args)).sort((a, b) => a - b);
  const c = process.cpuUsage(c0);
  return { wall: ms[0]! / 1000, median: ms[Math.floor(repeat / 2)]! / 1000, cpu: (c.user + c.system) / 1e6 / repeat };
}

interface GemmResult {
  shape: string;
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

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const threads = poolSize();
  const simd = opts.simd ?? simdVariant();
  console.log(`# matmul bench: ${simd}, ${threads} threads, ${os.cpus()[0]?.model ?? 'unknown CPU'}`);
  console.log(`# load average before: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  // The limits are measured before and after the kernels and the better of the two kept: other
  // processes only ever lower a measurement, so this keeps the ratios conservative.
  const before = measureMachine(threads);

  const gemmTimes = gemmShapes.map(([, n, k, m]) => {
    const args: MatmulArgs = { x: randomX(n * k), w: randomF16(m * k, n + k + m), wtype: 'f16', n, k, m, simd };
    return timeRuns('gemm', opts.repeat, args);
  });
  const gemvTimes = gemvShapes.map(([, k, m]) => {
    const args: MatmulArgs = { x: randomX(k), w: randomF16(m * k, k + m), wtype: 'f16', n: 1, k, m, simd };
    return timeRuns('gemv', Math.max(opts.repeat, 50), args); // a few ms each: more runs are cheap
  });

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
  console.log('\nGEMM, F16 weights          n      k      m    GFLOP/s  of peak   per-core  of core   best ms  median ms');
  gemmShapes.forEach(([name, n, k, m], i) => {
    const t = gemmTimes[i]!;
    const flop = 2 * n * k * m;
    const r: GemmResult = {
      shape: name, n, k, m,
      gflops: flop / t.wall / 1e9,
      ofPeak: flop / t.wall / 1e9 / machine.fmaGflops,
      gflopsPerCore: flop / t.cpu / 1e9,
      ofCorePeak: flop / t.cpu / 1e9 / machine.fmaGflopsCoreCpu,
      ms: t.wall * 1000,
      medianMs: t.median * 1000,
    };
    gemmResults.push(r);
    console.log(`${name.padEnd(22)} ${String(n).padStart(6)} ${String(k).padStart(6)} ${String(m).padStart(6)}` +
      `   ${r.gflops.toFixed(1).padStart(7)}  ${(100 * r.ofPeak).toFixed(0).padStart(5)}%` +
      `   ${r.gflopsPerCore.toFixed(1).padStart(7)}  ${(100 * r.ofCorePeak).toFixed(0).padStart(5)}%` +
      `  ${r.ms.toFixed(1).padStart(8)}  ${r.medianMs.toFixed(1).padStart(9)}`);
  });

  const gemvResults: GemvResult[] = [];
  console.log('\nGEMV, F16 weights, n = 1          k       m     GB/s  of read bw   best ms  median ms');
  gemvShapes.forEach(([name, k, m], i) => {
    const t = gemvTimes[i]!;
    const bytes = 2 * k * m;
    const r: GemvResult = {
      shape: name,
      gbps: bytes / t.wall / 1e9,
      ofBandwidth: bytes / t.wall / 1e9 / machine.readGbps,
      ms: t.wall * 1000,
      medianMs: t.median * 1000,
    };
    gemvResults.push(r);
    console.log(`${name.padEnd(28)} ${String(k).padStart(6)} ${String(m).padStart(7)}  ${r.gbps.toFixed(1).padStart(7)}` +
      `  ${(100 * r.ofBandwidth).toFixed(0).padStart(9)}%  ${r.ms.toFixed(1).padStart(8)}  ${r.medianMs.toFixed(1).padStart(9)}`);
  });
  console.log(`\n# load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  if (opts.json) {
    const report = { simd, threads, loadavg: os.loadavg(), machine, before, after, gemm: gemmResults,
      gemv: gemvResults };
    fs.writeFileSync(opts.json, JSON.stringify(report, null, 2));
  }
}

main();
