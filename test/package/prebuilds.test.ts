/**
 * The prebuilt binaries (`npm run prebuild`), each checked for what it is and, where this machine
 * can, loaded: linux-x64 here, linux-arm64 under qemu-user, win32-x64 under wine, each with the
 * official Node of its platform (scripts/foreign-node.ts). Every SIMD variant of the architecture
 * must be compiled in. The end-to-end runs are scripts/test-arm64.sh and scripts/test-win32.sh.
 */
import { describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { simdVariant } from '../../lib/native.js';
import { promisify } from 'node:util';

import { foreignEnv, missingRunner, type ForeignTarget } from '../../scripts/foreign-node.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The newest glibc / libstdc++ symbol versions the Linux prebuilds may need (README: Platforms). */
const MAX_GLIBC = '2.33';
const MAX_GLIBCXX = '3.4.30';

const PREBUILDS = {
  'linux-x64': { file: 'prebuilds/linux-x64/paligemma.glibc.node', machine: 'x86-64', variants: ['avx512', 'avx2', 'scalar'] },
  'linux-arm64': { file: 'prebuilds/linux-arm64/paligemma.glibc.node', machine: 'aarch64', variants: ['neon', 'scalar'] },
  'win32-x64': { file: 'prebuilds/win32-x64/paligemma.node', machine: 'x86-64', variants: ['avx512', 'avx2', 'scalar'] },
} as const;

/** The machine a binary is for, from its ELF or PE header. */
function machineOf(bytes: Buffer): { format: 'ELF' | 'PE'; machine: string } {
  const names: Record<number, string> = { 62: 'x86-64', 183: 'aarch64', 0x8664: 'x86-64', 0xaa64: 'aarch64' };
  if (bytes.readUInt32BE(0) === 0x7f454c46) return { format: 'ELF', machine: names[bytes.readUInt16LE(18)] ?? 'other' };
  const pe = bytes.readUInt32LE(0x3c);
  if (bytes.toString('latin1', 0, 2) === 'MZ' && bytes.toString('latin1', pe, pe + 4) === 'PE\0\0') {
    return { format: 'PE', machine: names[bytes.readUInt16LE(pe + 4)] ?? 'other' };
  }
  throw new Error('neither ELF nor PE');
}

/** Symbol versions a Linux binary needs (objdump of its own architecture, else the host's). */
function versionsNeeded(file: string, prefix: string): string[] | undefined {
  for (const objdump of [`${prefix}objdump`, 'objdump']) {
    const r = spawnSync(objdump, ['-T', file], { encoding: 'utf8' });
    if (r.status === 0) return [...new Set(r.stdout.match(/\b(GLIBC|GLIBCXX)_[\d.]+/g) ?? [])];
  }
  return undefined;
}

const newest = (versions: string[], name: string) =>
  versions
    .filter((v) => v.startsWith(`${name}_`))
    .map((v) => v.slice(name.length + 1))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .pop();

/**
 * The runner + Node command for `target` (scripts/foreign-node.ts, in a child process: the first
 * call downloads Node and sets wine up, which must not block this test worker for long).
 */
async function foreignNode(target: ForeignTarget): Promise<string[]> {
  const script = path.join(projectRoot, 'scripts/foreign-node.ts');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, target], { cwd: projectRoot });
  return stdout.trim().split('\n');
}

/** What the addon says about itself when `node` (a command) loads `file`; node.exe's output goes through a file (wine). */
function probe(command: string[], file: string, env: NodeJS.ProcessEnv) {
  const code = `const a = require(${JSON.stringify(file)}); console.log(JSON.stringify({ arch: a.cpuFeatures().arch, variants: a.simdVariants().map((v) => v.name), best: a.simdVariant() }))`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pg-probe-'));
  try {
    const out = openSync(path.join(dir, 'out'), 'w');
    const r = spawnSync(command[0]!, [...command.slice(1), '-e', code], { env, stdio: ['ignore', out, out] });
    closeSync(out);
    const text = readFileSync(path.join(dir, 'out'), 'utf8');
    if (r.status !== 0) throw new Error(`${command.join(' ')} failed (${r.status}): ${text}`);
    return JSON.parse(text.trim().split('\n').pop()!) as { arch: string; variants: string[]; best: string };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.each(Object.entries(PREBUILDS))('%s prebuild', (target, p) => {
  const file = path.join(projectRoot, p.file);

  it('is where node-gyp-build looks, for the right machine, an N-API module', () => {
    if (!existsSync(file)) throw new Error(`${p.file} is missing: run \`npm run prebuild\` first`);
    const bytes = readFileSync(file);
    expect(machineOf(bytes)).toEqual({ format: target.startsWith('win32') ? 'PE' : 'ELF', machine: p.machine });
    expect(bytes.includes('napi_register_module_v1')).toBe(true);
  });

  if (target.startsWith('linux')) {
    it(`needs at most glibc ${MAX_GLIBC} and libstdc++ ${MAX_GLIBCXX}`, (ctx) => {
      const versions = versionsNeeded(file, target === 'linux-arm64' ? 'aarch64-linux-gnu-' : '');
      if (!versions) return ctx.skip('objdump is not installed (binutils)');
      expect(newest(versions, 'GLIBC')!.localeCompare(MAX_GLIBC, 'en', { numeric: true })).toBeLessThanOrEqual(0);
      expect(newest(versions, 'GLIBCXX')!.localeCompare(MAX_GLIBCXX, 'en', { numeric: true })).toBeLessThanOrEqual(0);
    });
  } else {
    it('needs no MinGW runtime DLL (the C++ runtime and threads are linked in)', () => {
      const bytes = readFileSync(file);
      for (const dll of ['libstdc++-6.dll', 'libgcc_s_seh-1.dll', 'libwinpthread-1.dll']) expect(bytes.includes(dll), dll).toBe(false);
    });
  }

  it('loads, with every SIMD variant of its architecture compiled in', async (ctx) => {
    let command: string[];
    let env: NodeJS.ProcessEnv = process.env;
    if (target === `${process.platform}-${process.arch}`) {
      command = [process.execPath];
    } else {
      const missing = missingRunner(target as ForeignTarget);
      if (missing) return ctx.skip(missing);
      command = await foreignNode(target as ForeignTarget);
      env = foreignEnv(target as ForeignTarget);
    }
    const info = probe(command, file, env);
    expect(info.arch).toBe(p.machine === 'aarch64' ? 'arm64' : 'x64');
    expect(info.variants).toEqual(p.variants);
    // The best variant this CPU runs, as the development build picks it (qemu emulates NEON).
    expect(info.best).toBe(p.machine === 'aarch64' ? 'neon' : simdVariant());
  });

  if (target === 'win32-x64') {
    it('loads in a host that is not named node.exe (Electron): the delay-load hook', async (ctx) => {
      const missing = missingRunner('win32-x64');
      if (missing) return ctx.skip(missing);
      const command = await foreignNode('win32-x64');
      const dir = mkdtempSync(path.join(os.tmpdir(), 'pg-electron-'));
      try {
        copyFileSync(command.at(-1)!, path.join(dir, 'electron.exe'));
        const info = probe([...command.slice(0, -1), path.join(dir, 'electron.exe')], file, foreignEnv('win32-x64'));
        expect(info.variants).toEqual(p.variants);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
