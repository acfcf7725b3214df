/**
 * Measures the machine's limits — FP32 FMA peak and memory read bandwidth — with the C++ probe in
 * bench/machine.cc, compiled with g++ for this CPU on first use into a cache directory (keyed by the
 * source's hash, so edits recompile).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const projectRoot = path.resolve(here, '..');

/** The measured limits (best of several repetitions each). */
export interface MachineLimits {
  threads: number;
  /** Vector lanes of the FMA probe (16 AVX-512, 8 AVX2, 4 NEON). */
  lanes: number;
  /** FP32 FMA GFLOP/s with `threads` threads, and with one. */
  fmaGflops: number;
  fmaGflops1t: number;
  /** One core's FMA GFLOP/s over its own CPU time (robust to other processes sharing the cores). */
  fmaGflopsCoreCpu: number;
  /**
   * Memory read GB/s with `threads` threads, and with one: plain vector loads summing each thread's
   * share of a 512 MiB buffer, split into S sequential streams read side by side; the best over
   * S = 1, 2, 4, 8 (see bench/machine.cc).
   */
  readGbps: number;
  /** The streams per thread that gave readGbps (informational; optional so hand-made limits may omit it). */
  readStreams?: number;
  readGbps1t: number;
  /** 1-minute load average before the probe ran (others' work on a shared machine). */
  loadBefore: number;
}

/** Where compiled bench probes live (PALIGEMMA_BENCH_CACHE, default .cache/bench in the project). */
export function benchCacheDir(): string {
  return process.env.PALIGEMMA_BENCH_CACHE ?? path.join(projectRoot, '.cache', 'bench');
}

/** Compiles bench/machine.cc if needed and returns the executable's path. */
export function machineProbe(): string {
  const source = path.join(here, 'machine.cc');
  const hash = createHash('sha256').update(fs.readFileSync(source)).digest('hex').slice(0, 16);
  const dir = benchCacheDir();
  const exe = path.join(dir, `machine-${hash}`);
  if (!fs.existsSync(exe)) {
    fs.mkdirSync(dir, { recursive: true });
    const cxx = process.env.CXX ?? 'g++';
    execFileSync(cxx, ['-std=c++17', '-O3', '-march=native', '-pthread', '-o', `${exe}.tmp`, source],
      { stdio: 'inherit' });
    fs.renameSync(`${exe}.tmp`, exe);
  }
  return exe;
}

/** Runs the probe with `threads` threads over a `bufferMiB` buffer (well above the last-level cache). */
export function measureMachine(threads: number, bufferMiB = 512): MachineLimits {
  const loadBefore = os.loadavg()[0]!;
  const out = execFileSync(machineProbe(), [String(threads), String(bufferMiB)], { encoding: 'utf8' });
  const r = JSON.parse(out) as Record<string, number>;
  return {
    threads: r.threads!,
    lanes: r.lanes!,
    fmaGflops: r.fma_gflops!,
    fmaGflops1t: r.fma_gflops_1t!,
    fmaGflopsCoreCpu: r.fma_gflops_core_cpu!,
    readGbps: r.read_gbps!,
    readStreams: r.read_streams!,
    readGbps1t: r.read_gbps_1t!,
    loadBefore,
  };
}

// `node --import tsx bench/machine.ts [threads]` prints the limits.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(measureMachine(Number(process.argv[2] ?? 2)));
}
