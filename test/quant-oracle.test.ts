// Our quantizers against llama.cpp's own: quantize_row_*_ref and dequantize_row_* from the prebuilt
// libggml-base.so that node-llama-cpp ships (installed by the bench into its cache). A tiny program
// (test/native/llama-oracle.cc) loads them with dlopen; bytes and dequantized values must be equal.
// Skips when node-llama-cpp or g++ is absent.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { seededRandom } from '../lib/model/sampling.js';
import { loadTestAddon, native } from '../lib/native.js';
import { findLlamaBaseLibrary } from './helpers/llama-lib.js';
import { QUANT_TYPES, testRows } from './helpers/quant-ref.js';
import type { QuantTypeName } from './helpers/quant-ref.js';

const testAddon = loadTestAddon();

const lib = findLlamaBaseLibrary();
const gxx = (() => {
  try {
    execFileSync('g++', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip = 'missing' in lib ? lib.missing : gxx ? undefined : 'g++ is not installed';
const LLAMA_NAMES: Record<QuantTypeName, string> = { Q8_0: 'q8_0', Q4_0: 'q4_0', Q5_0: 'q5_0', Q4_K: 'q4_K', Q6_K: 'q6_K', Q8_K: 'q8_K' };
const K = 1024;

if (skip) it.skip(`llama.cpp oracle skipped: ${skip}`, () => undefined);

describe.skipIf(skip !== undefined)('quantizers equal llama.cpp (node-llama-cpp 3.21.1)', () => {
  let dir: string;
  let oracle: string;
  let rows: { name: string; values: Float32Array }[];

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-oracle-'));
    oracle = path.join(dir, 'llama-oracle');
    execFileSync('g++', ['-std=c++17', '-O1', '-o', oracle, path.resolve('test/native/llama-oracle.cc'), '-ldl']);
    // The adversarial rows, then 200 random rows of varied scale and offset.
    rows = testRows(K, 11);
    const random = seededRandom(99);
    for (let r = 0; r < 200; r++) {
      const scale = 10 ** (random() * 12 - 8);
      const offset = random() < 0.3 ? (random() - 0.5) * scale * 4 : 0;
      rows.push({ name: `random ${r}`, values: Float32Array.from({ length: K }, () => offset + scale * (random() + random() + random() - 1.5)) });
    }
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const type of Object.keys(QUANT_TYPES) as QuantTypeName[]) {
    it(`${type}: the same bytes and dequantized values on ${testRows(K, 11).length} adversarial and 200 random rows`, async () => {
      const { id, block, bytes } = QUANT_TYPES[type];
      const all = new Float32Array(rows.length * K);
      rows.forEach((r, i) => all.set(r.values, i * K));
      const input = path.join(dir, `${type}.f32`);
      fs.writeFileSync(input, all);
      execFileSync(oracle, [(lib as { path: string }).path, LLAMA_NAMES[type], String(K), input, `${input}.q`, `${input}.dq`]);
      const theirs = new Uint8Array(fs.readFileSync(`${input}.q`));
      const theirValues = new Uint32Array(new Uint8Array(fs.readFileSync(`${input}.dq`)).buffer);

      const rowBytes = (K / block) * bytes;
      const ours = new Uint8Array(rows.length * rowBytes);
      expect(await native.quantizeRowsAsync(id, new Uint8Array(all.buffer), 0, rows.length, K, ours)).toBeNull();
      const ourValues = new Uint32Array(testAddon.dequantizeRows(id, ours, rows.length, K).buffer);
      for (let r = 0; r < rows.length; r++) {
        const a = ours.subarray(r * rowBytes, (r + 1) * rowBytes);
        const b = theirs.subarray(r * rowBytes, (r + 1) * rowBytes);
        const at = a.findIndex((v, i) => v !== b[i]);
        expect(at, `${rows[r]!.name}: first differing byte (block ${Math.floor(at / bytes)})`).toBe(-1);
        const v = ourValues.subarray(r * K, (r + 1) * K).findIndex((x, i) => x !== theirValues[r * K + i]);
        expect(v, `${rows[r]!.name}: first differing dequantized value`).toBe(-1);
      }
    });
  }
});
