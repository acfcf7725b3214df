/**
 * The kernels' scratch memory (native/kernels/scratch.h): one set of buffers for the process, lent to
 * a call and given back, instead of one buffer per calling thread (test/native/scratch-test.cc,
 * compiled and run standalone).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe.skipIf(process.platform === 'win32')('ScratchLease', () => {
  let dir: string;
  let output: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-scratch-'));
    const exe = path.join(dir, 'scratch-test');
    await run('g++', ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', exe,
      path.resolve('native/kernels/scratch.cc'), path.resolve('test/native/scratch-test.cc')]);
    output = (await run(exe, [], { timeout: 60_000 }).catch((err: { stdout?: string; message: string }) => ({ stdout: err.stdout ?? err.message }))).stdout;
  }, 120_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lends buffers that calls from other threads reuse, distinct while held at once, aligned, grown on demand', () => {
    expect(output, output).toMatch(/^ok scratch: 9 checks$/m);
    expect(output).not.toMatch(/FAIL/);
  });
});
