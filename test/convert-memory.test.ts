/**
 * Conversion streams: a checkpoint with two 210 MB tensors converts in a child process whose peak RSS
 * grows by far less than one tensor. Measured in a fresh process so that nothing else in the test run
 * (other files' buffers, vitest itself) is counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot, writeHFCheckpoint } from './helpers/hf-checkpoint.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'convert-mem-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Vision FFN of width 3,276,800 × hidden 16: fc1 and fc2 are 52.4 M F32 elements = 210 MB each. Their data
// are holes in a sparse file (zeros), which costs no disk and reads as fast as the page cache allows.
const FFN = 3_276_800;
const TENSOR_BYTES = FFN * 16 * 4;

describe('streaming conversion', () => {
  it(`peak RSS grows by less than one ${Math.round(TENSOR_BYTES / 1e6)} MB tensor`, () => {
    const dir = path.join(tmp, 'big');
    writeHFCheckpoint(dir, {
      text: { hidden: 16, intermediate: 32, layers: 1, heads: 1, kvHeads: 1, headDim: 16, vocab: 320 },
      vision: { hidden: 16, intermediate: FFN, layers: 1, heads: 2, imageSize: 28, patchSize: 14 },
      holes: (name) => name.includes('mlp.fc'),
    });
    const script = `
      const { convertCheckpoint } = await import('./lib/convert/convert.ts');
      global.gc?.();
      const before = process.memoryUsage().rss;
      const r = await convertCheckpoint(${JSON.stringify(dir)}, { outDir: ${JSON.stringify(path.join(tmp, 'out'))}, outType: 'f16' });
      const peak = process.resourceUsage().maxRSS * 1024;
      console.log(JSON.stringify({ before, peak, growth: peak - before }));
    `;
    const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: projectRoot,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(child.status, child.stderr).toBe(0);
    const m = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { before: number; peak: number; growth: number };
    console.log(`convert: largest tensor ${(TENSOR_BYTES / 2 ** 20).toFixed(0)} MiB, RSS before ${(m.before / 2 ** 20).toFixed(0)} MiB, ` +
      `peak ${(m.peak / 2 ** 20).toFixed(0)} MiB, growth ${(m.growth / 2 ** 20).toFixed(0)} MiB`);
    // Streaming holds one 4 MiB chunk plus its converted copy at a time; garbage collection may lag a few
    // chunks behind. Holding one whole tensor (its source or its F16 output) would alone add 105–210 MB.
    expect(m.growth).toBeLessThan(TENSOR_BYTES / 2);
  }, 120_000);
});
