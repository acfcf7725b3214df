/**
 * GGUF header speed on the real-size PaliGemma text model layout (257216-token vocabulary, 164 tensors,
 * sparse ~5 GB file). Run: `node --import tsx bench/gguf.ts`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGGUF, writeGGUF } from '../lib/gguf/index.js';
import { paligemmaTextModelLayout } from '../test/helpers/gguf-fixtures.js';

/** Wall and CPU milliseconds of one call (CPU time is steadier on a shared machine). */
async function timed(f: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const cpu = process.cpuUsage(cpu0);
  return { wall: performance.now() - t0, cpu: (cpu.user + cpu.system) / 1000 };
}

function summary(label: string, runs: { wall: number; cpu: number }[]): void {
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const walls = runs.map((r) => r.wall);
  console.log(
    `${label}: first ${walls[0]!.toFixed(0)} ms, median ${med(walls).toFixed(0)} ms, min ${Math.min(...walls).toFixed(0)} ms` +
      ` (median CPU ${med(runs.map((r) => r.cpu)).toFixed(0)} ms) over ${runs.length} runs`,
  );
}

const dir = await mkdtemp(join(tmpdir(), 'paligemma-bench-gguf-'));
try {
  const path = join(dir, 'paligemma-text.gguf');
  const input = paligemmaTextModelLayout();
  const writes = [];
  for (let i = 0; i < 3; i++) writes.push(await timed(() => writeGGUF(path, input)));
  summary('writeGGUF (header only, sparse)', writes);
  const reads = [];
  for (let i = 0; i < 10; i++) reads.push(await timed(() => readGGUF(path)));
  summary('readGGUF (6.7 MB header)', reads);
  console.log(`first read CPU ${reads[0]!.cpu.toFixed(0)} ms`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
