// The quantized kernels (native/kernels/quant_dot.h: dot microkernels, GEMM, GEMV): every x86 variant
// this CPU runs against the scalar reference, in a standalone C++ program (test/native/quant-dot-test.cc) built here with g++
// and each variant's ISA flags. (The NEON variants: scripts/check-neon.sh --run, under qemu.)
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cpuFeatures } from '../lib/native.js';

const run = promisify(execFile);
const features = cpuFeatures();
const AVX512 = ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mavx2', '-mfma', '-mf16c'];
/** Each translation unit and its flags (the ISA flags are those of the addon's kernel targets). */
const UNITS: [string, string[]][] = [
  ['native/quant/quantize.cc', []],
  ['native/cpu/features.cc', []],
  ['native/kernels/quant_dot_select.cc', []],
  ['native/threadpool.cc', []],
  ['native/fault_guard.cc', []],
  ['native/kernels/scratch.cc', []],
  ['native/kernels/scalar/quant_dot.cc', []],
  ['native/kernels/avx2/quant_dot.cc', ['-mavx2', '-mfma', '-mf16c']],
  ['native/kernels/avx512/quant_dot.cc', AVX512],
  ['native/kernels/avx512vnni/quant_dot.cc', [...AVX512, '-mavx512vnni']],
  ['test/native/quant-dot-test.cc', []],
];

describe.skipIf(features.arch !== 'x64')('quantized dot microkernels (x86)', () => {
  let dir: string;
  let output: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-qdot-'));
    const objects = await Promise.all(
      UNITS.map(async ([src, flags], i) => {
        const obj = path.join(dir, `${i}.o`);
        await run('g++', ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', ...flags, '-c', path.resolve(src), '-o', obj]);
        return obj;
      }),
    );
    const exe = path.join(dir, 'quant-dot-test');
    await run('g++', ['-pthread', '-o', exe, ...objects]);
    output = (await run(exe, [], { timeout: 120_000 }).catch((err: { stdout?: string; message: string }) => ({ stdout: err.stdout ?? err.message }))).stdout;
  }, 300_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const expectVariant = (name: string, supported: boolean) => {
    if (!supported) return expect(output).toContain(`skipped ${name}:`);
    expect(output, output).toMatch(new RegExp(`^ok ${name}: \\d+ checks, [1-9]\\d* of them bit-exact$`, 'm'));
  };

  it('AVX2 equals the scalar reference', () => expectVariant('avx2', features.avx2 && features.fma && features.f16c));
  it('AVX-512 (vpmaddubsw, vpmaddwd) equals the scalar reference', () =>
    expectVariant('avx512', features.avx512f && features.avx512bw && features.avx512vl && features.avx512dq));
  it('AVX-512 VNNI (vpdpbusd) equals the scalar reference', () =>
    expectVariant('avx512vnni', features.avx512f && features.avx512bw && features.avx512vl && features.avx512dq && features.avx512vnni));
  it('no failure anywhere', () => expect(output).not.toMatch(/FAIL/));
});
