/**
 * How the bench runs an engine: each in its own child process, so its peak RSS is its own and one
 * engine's allocations or page mappings cannot slow the other. The child gets its input as JSON in
 * argv[2], logs to stderr, and prints its result as one `BENCH_RESULT {json}` line on stdout. The
 * parent records what else ran on the machine meanwhile (load average, other processes' CPU time).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { seededRandom } from '../lib/model/sampling.js';

const RESULT_PREFIX = 'BENCH_RESULT ';

/** Resident memory of this process, from /proc/self/status (MB = 1e6 bytes). */
export interface MemoryStatus {
  /** VmRSS: resident now (includes mapped file pages the process touched). */
  rssMb: number;
  /** VmHWM: the peak resident size so far. */
  peakRssMb: number;
}

/** Reads VmRSS and VmHWM of `pid` (default this process). */
export function memoryStatus(pid: number | 'self' = 'self'): MemoryStatus {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: (kb('VmRSS') * 1024) / 1e6, peakRssMb: (kb('VmHWM') * 1024) / 1e6 };
}

/** The child's input (argv[2] as JSON). */
export function childInput<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T;
}

/** Sends the child's result to the parent and ends the process (engines may hold handles open). */
export async function reply(result: unknown): Promise<never> {
  await new Promise<void>((resolve) => process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`, () => resolve()));
  process.exit(0);
}

/** Progress line from a child, on stderr (the parent passes it through). */
export function progress(line: string): void {
  process.stderr.write(`    ${line}\n`);
}

/** `n` prompt token ids: `<bos>` (2), then ids drawn uniformly from the text pieces [2, 256000), seeded. */
export function promptTokens(n: number, seed = 266): number[] {
  const random = seededRandom(seed);
  const ids = [2];
  while (ids.length < n) ids.push(2 + Math.floor(random() * (256000 - 2)));
  return ids;
}

/** What the parent saw of one child run. */
export interface ChildRun<T> {
  result?: T;
  error?: string;
  wallMs: number;
  /** 1-minute load average before and after the run. */
  loadBefore: number;
  loadAfter: number;
  /**
   * Average number of cores busy with other processes during the run: machine-wide busy CPU time
   * (/proc/stat) minus the child's own CPU time, over the wall time. 0 on an idle machine.
   */
  otherCores?: number;
  /** Average cores taken by the hypervisor for other guests (steal time) during the run. */
  stealCores?: number;
}

/** Busy and steal jiffies of the whole machine (USER_HZ, normally 100/s). */
function cpuJiffies(): { busy: number; steal: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  return { busy: user! + nice! + system! + irq! + softirq!, steal: steal ?? 0 };
}
const JIFFIES_PER_SECOND = 100;

/** CPU seconds `pid` has used so far (utime + stime from /proc/<pid>/stat), or undefined once it is gone. */
function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // the command name may contain spaces
    return (Number(fields[11]) + Number(fields[12])) / JIFFIES_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** A child that used no CPU for this long is deadlocked (every phase of a trial computes): kill it. */
const STALL_MS = 90_000;

/**
 * The two processes of one trial, run one after the other, as one run: the results merged
 * (`cpuSeconds` summed), wall times added, the other processes' and the hypervisor's shares
 * weighted by each run's time. A failure of either is the trial's error.
 */
export function joinRuns<A extends { cpuSeconds: number }, B extends { cpuSeconds: number }>(
  a: ChildRun<A>,
  b: ChildRun<B> | undefined,
): ChildRun<A & B> {
  const wallMs = a.wallMs + (b?.wallMs ?? 0);
  const weighted = (x?: number, y?: number) =>
    x === undefined || (b !== undefined && y === undefined) ? undefined : (x * a.wallMs + (y ?? 0) * (b?.wallMs ?? 0)) / wallMs;
  return {
    result: a.result && b?.result ? { ...a.result, ...b.result, cpuSeconds: a.result.cpuSeconds + b.result.cpuSeconds } : undefined,
    error: a.error ?? b?.error ?? (b ? undefined : 'the second process of the trial did not run'),
    wallMs,
    loadBefore: a.loadBefore,
    loadAfter: b?.loadAfter ?? a.loadAfter,
    otherCores: weighted(a.otherCores, b?.otherCores),
    stealCores: weighted(a.stealCores, b?.stealCores),
  };
}

const bundles = new Map<string, Promise<string>>();

/**
 * `script` and what it imports from this repository, bundled by esbuild into one JavaScript file in
 * build/bench/ (once per bench run, from the sources as they are now). Children run it in plain Node,
 * as a user's process runs the package, rather than through tsx: tsx's loader keeps a thread with a
 * V8 isolate of its own (about 37 MB resident) that would count in every engine's peak RSS. Inside
 * the repository, the bundle finds node_modules and the native addon as lib/ does.
 */
function bundled(script: string): Promise<string> {
  let file = bundles.get(script);
  if (!file) {
    const outfile = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'build', 'bench', `${path.basename(script, '.ts')}.mjs`);
    // Imported here, not at the top: the children import this module too, and need no esbuild.
    file = import('esbuild').then(({ build }) => build({
      entryPoints: [script],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      logLevel: 'warning',
    })).then(() => outfile);
    bundles.set(script, file);
  }
  return file;
}

/**
 * Runs `script` (a TypeScript file, bundled: see {@link bundled}) with `input`, passing its stderr
 * through, and returns its result. A child that exits without a result, runs past `timeoutMs`, or
 * stalls (no CPU use for 90 s) is killed and reported as an error; the caller decides what to do
 * with it. The child's result must carry `cpuSeconds`.
 */
export async function runChild<T extends { cpuSeconds: number }>(
  script: string,
  input: unknown,
  timeoutMs: number,
): Promise<ChildRun<T>> {
  const file = await bundled(script);
  const loadBefore = os.loadavg()[0]!;
  const cpu0 = cpuJiffies();
  const t0 = performance.now();
  const child = spawn(process.execPath, [file, JSON.stringify(input)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  const stderrTail: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    process.stderr.write(s);
    stderrTail.push(s);
    if (stderrTail.length > 40) stderrTail.shift();
  });
  let killedFor: string | undefined;
  const kill = (why: string) => {
    killedFor ??= why;
    child.kill('SIGKILL');
  };
  const timer = setTimeout(() => kill(`timed out after ${(timeoutMs / 1000).toFixed(0)} s`), timeoutMs);
  let lastCpu = -1;
  let lastProgress = performance.now();
  const watchdog = setInterval(() => {
    const cpu = child.pid === undefined ? undefined : processCpuSeconds(child.pid);
    if (cpu === undefined) return;
    if (cpu > lastCpu + 0.05) {
      lastCpu = cpu;
      lastProgress = performance.now();
    } else if (performance.now() - lastProgress > STALL_MS) {
      kill(`stalled (no CPU use for ${STALL_MS / 1000} s; deadlocked?)`);
    }
  }, 5_000);

  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(watchdog);
      const wallMs = performance.now() - t0;
      const cpu1 = cpuJiffies();
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      const run: ChildRun<T> = { wallMs, loadBefore, loadAfter: os.loadavg()[0]! };
      if (line) {
        run.result = JSON.parse(line.slice(RESULT_PREFIX.length)) as T;
        const wallS = wallMs / 1000;
        run.otherCores = Math.max(0, ((cpu1.busy - cpu0.busy) / JIFFIES_PER_SECOND - run.result.cpuSeconds) / wallS);
        run.stealCores = (cpu1.steal - cpu0.steal) / JIFFIES_PER_SECOND / wallS;
      } else {
        const why = killedFor ?? `exited (code ${code}, signal ${signal}) without a result`;
        const tail = (stderrTail.join('') + stdout).trim().split('\n').slice(-8).join(' | ');
        run.error = `${why}${tail ? `: ${tail}` : ''}`;
      }
      resolve(run);
    });
  });
}
