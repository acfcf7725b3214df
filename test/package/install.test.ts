/**
 * The package as a user gets it: packed (`npm pack`, which builds dist/), installed from the
 * tarball into temporary apps, then used through `import` and `require` and type-checked both ways.
 *  - With a PATH holding only node, npm and sh (no compiler, make or Python), the install takes the
 *    linux-x64 prebuild and the tiny model passes its golden check on each SIMD variant.
 *  - With install scripts off the prebuild is found at run time. With no prebuild for the
 *    platform either, the pure-JS exports work and loadModel fails with one NativeAddonError
 *    line; the fix it names (`npm rebuild paligemma` with a toolchain) compiles the addon from
 *    the tarball's sources and makes the model run.
 * Needs prebuilds/ (`npm run prebuild`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type SpawnOptions } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { simdVariant, simdVariants } from '../../lib/native.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURE = path.join(projectRoot, 'test/fixtures/paligemma-tiny');
const TSC = path.join(projectRoot, 'node_modules/typescript/bin/tsc');
const work = mkdtempSync(path.join(os.tmpdir(), 'pg-install-'));
let tarball: string;

/** This environment without npm's per-run variables (the test may itself run under `npm run`). */
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: NodeJS.ErrnoException;
}

/** Runs a command to its end. Asynchronous: a test blocked in spawnSync for a minute starves vitest's worker. */
function run(cmd: string, args: string[], options: SpawnOptions = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: cleanEnv, ...options });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d));
    child.stderr?.on('data', (d: Buffer) => (stderr += d));
    child.on('error', (error) => resolve({ status: null, stdout, stderr, error }));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A new app directory with the tarball installed by `npm install ...flags`. */
async function app(name: string, flags: string[], env: NodeJS.ProcessEnv = cleanEnv) {
  const dir = path.join(work, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true }));
  copyFileSync(path.join(projectRoot, 'scripts/golden-check.mjs'), path.join(dir, 'golden-check.mjs'));
  const r = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...flags, tarball], { cwd: dir, env });
  return { dir, install: r };
}

/** scripts/golden-check.mjs in `dir`: its JSON verdict. */
async function goldenCheck(dir: string, flags: string[] = [], env: NodeJS.ProcessEnv = cleanEnv) {
  const r = await run(process.execPath, ['golden-check.mjs', FIXTURE, ...flags], { cwd: dir, env });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (!last.startsWith('{')) throw new Error(`golden-check.mjs failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return { status: r.status, verdict: JSON.parse(last) as { ok: boolean; module: string; simd: string; failures: string[] } };
}

beforeAll(async () => {
  const prebuild = path.join(projectRoot, 'prebuilds/linux-x64/paligemma.glibc.node');
  if (!existsSync(prebuild)) throw new Error(`${prebuild} is missing: run \`npm run prebuild\` first`);
  const r = await run('npm', ['pack', '--pack-destination', work], { cwd: projectRoot });
  if (r.status !== 0) throw new Error(`npm pack failed:\n${r.stderr}`);
  tarball = path.join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('installed where there is no compiler', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    // PATH: node, npm and the shell npm runs scripts with; nothing else.
    const bin = path.join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, path.join(bin, 'node'));
    symlinkSync('/bin/sh', path.join(bin, 'sh'));
    symlinkSync(realpathSync((await run('sh', ['-c', 'command -v npm'])).stdout.trim()), path.join(bin, 'npm'));
    env = { ...cleanEnv, PATH: bin };
    const a = await app('no-toolchain', [], env);
    expect(a.install.status, a.install.stderr).toBe(0);
    dir = a.dir;
  });

  it('has no compiler, make or Python on its PATH', async () => {
    for (const tool of ['cc', 'gcc', 'g++', 'c++', 'clang', 'make', 'python3']) {
      expect((await run(tool, ['--version'], { env })).error, tool).toMatchObject({ code: 'ENOENT' });
    }
  });

  it('uses the prebuild: nothing was compiled', () => {
    const pkg = path.join(dir, 'node_modules/paligemma');
    expect(existsSync(path.join(pkg, 'prebuilds/linux-x64/paligemma.glibc.node'))).toBe(true);
    expect(existsSync(path.join(pkg, 'build'))).toBe(false);
  });

  it('import and require give the same API', async () => {
    const code = `
      const viaRequire = require('paligemma');
      import('paligemma').then((viaImport) => {
        const names = (m) => Object.keys(m).filter((k) => k !== 'default').sort();
        console.log(JSON.stringify({ require: names(viaRequire), import: names(viaImport),
          types: names(viaImport).map((k) => typeof viaImport[k] === typeof viaRequire[k]) }));
      });`;
    const r = await run(process.execPath, ['-e', code], { cwd: dir, env });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { require: string[]; import: string[]; types: boolean[] };
    expect(out.require).toEqual(out.import);
    expect(out.import).toEqual(expect.arrayContaining(['loadModel', 'readGGUF', 'parseDetections', 'Tokenizer', 'NativeAddonError', 'simdVariants']));
    expect(out.types.every(Boolean)).toBe(true);
  });

  // The best variant first (no override), then each other supported one through PALIGEMMA_SIMD,
  // alternating import and require.
  const variants = [undefined, ...simdVariants().filter((v) => v.supported && v.name !== simdVariant()).map((v) => v.name)];
  const cases = variants.map((simd, i) => ({ simd, label: simd ?? '(unset)', viaRequire: i % 2 === 1, via: i % 2 ? 'require' : 'import' }));
  it.each(cases)('the tiny model passes its golden check: PALIGEMMA_SIMD=$label, through $via', async ({ simd, viaRequire }) => {
    const { status, verdict } = await goldenCheck(dir, viaRequire ? ['--require'] : [], simd ? { ...env, PALIGEMMA_SIMD: simd } : env);
    expect(verdict.failures).toEqual([]);
    expect(status).toBe(0);
    expect(verdict).toMatchObject({ ok: true, module: viaRequire ? 'require' : 'import', simd: simd ?? simdVariant() });
  });

  it('type-checks from an ES module and from CommonJS (node16), and with the legacy resolution', async () => {
    const shared = (api: string) => `
      export async function caption(model: string, projector: string, image: Buffer): Promise<string> {
        const m: ${api}PaliGemma = await ${api}loadModel({ model, projector, threads: 2 });
        const r: ${api}GenerationResult = await m.describe(image, { maxTokens: 8 });
        await m.dispose();
        return r.text;
      }
      // @ts-expect-error threads is a number (an error here proves the types are not \`any\`)
      void ${api}loadModel({ model: 'x.gguf', threads: 'many' });
      export const boxes = ${api}parseDetections('', { width: 1, height: 1 }).detections.map((d) => d.box);
      export const addonMissing = (e: unknown) => e instanceof ${api}NativeAddonError && e.code === 'NOT_FOUND';
    `;
    writeFileSync(path.join(dir, 'esm.mts'), `import * as pg from 'paligemma';\n${shared('pg.')}`);
    writeFileSync(path.join(dir, 'cjs.cts'), `import pg = require('paligemma');\n${shared('pg.')}`);
    writeFileSync(path.join(dir, 'legacy.ts'), `import * as pg from 'paligemma';\n${shared('pg.')}`);
    const options = {
      strict: true, noEmit: true, skipLibCheck: false, target: 'es2022',
      types: ['node'], typeRoots: [path.join(projectRoot, 'node_modules/@types')],
    };
    const configs = {
      'tsconfig.node16.json': { compilerOptions: { ...options, module: 'node16', moduleResolution: 'node16' }, files: ['esm.mts', 'cjs.cts'] },
      'tsconfig.legacy.json': { compilerOptions: { ...options, module: 'commonjs', moduleResolution: 'node10' }, files: ['legacy.ts'] },
    };
    const declarations: Record<string, string[]> = {};
    for (const [name, config] of Object.entries(configs)) {
      writeFileSync(path.join(dir, name), JSON.stringify(config));
      const r = await run(process.execPath, [TSC, '-p', name, '--listFiles'], { cwd: dir });
      expect(r.status, `${name}:\n${r.stdout}`).toBe(0);
      declarations[name] = r.stdout.split('\n').filter((f) => /node_modules\/paligemma\/dist\/(cjs\/)?index\.d\.ts$/.test(f)).map((f) => f.slice(f.indexOf('dist/')));
    }
    // import reads dist/, require reads dist/cjs/ (the CommonJS copy); the legacy resolution, "types".
    expect(declarations['tsconfig.node16.json']!.sort()).toEqual(['dist/cjs/index.d.ts', 'dist/index.d.ts']);
    expect(declarations['tsconfig.legacy.json']).toEqual(['dist/cjs/index.d.ts']);
  });
});

describe('installed with scripts disabled', () => {
  let dir: string;
  // Converts the tiny fixture (pure JS), then tries to load it; prints what happened as JSON.
  const attempt = (load: string) => `
    const os = require('node:os'), path = require('node:path');
    const out = path.join(os.tmpdir(), 'pg-noaddon-' + process.pid);
    (async () => {
      const pg = ${load};
      const files = await pg.convertCheckpoint(${JSON.stringify(FIXTURE)}, { outDir: out, outType: 'f16' });
      const gguf = await pg.readGGUF(files.textPath);
      const detections = pg.parseDetections('<loc0000><loc0000><loc1023><loc1023> cat', { width: 8, height: 8 }).detections;
      let error;
      try { await (await pg.loadModel({ model: files.textPath, projector: files.projectorPath })).dispose(); }
      catch (e) { error = { name: e.name, code: e.code, message: e.message, isClass: e instanceof pg.NativeAddonError }; }
      require('node:fs').rmSync(out, { recursive: true, force: true });
      console.log(JSON.stringify({ tensors: gguf.tensors.length, detections: detections.length, error }));
    })();`;

  let withPrebuild: Ran;

  beforeAll(async () => {
    const a = await app('no-scripts', ['--ignore-scripts']);
    expect(a.install.status, a.install.stderr).toBe(0);
    dir = a.dir;
    withPrebuild = await run(process.execPath, ['-e', "console.log(require('paligemma').simdVariant())"], { cwd: dir });
    // From here on, as on a platform the package has no prebuild for.
    rmSync(path.join(dir, 'node_modules/paligemma/prebuilds'), { recursive: true });
  });

  it('the prebuild needs no install script: it is found at run time', () => {
    expect(withPrebuild.stderr).toBe('');
    expect(withPrebuild.stdout.trim()).toBe(simdVariant());
  });

  it.each([["require('paligemma')"], ["await import('paligemma')"]])('%s: pure-JS exports work, loadModel says how to fix it in one line', async (load) => {
    const r = await run(process.execPath, ['-e', attempt(load)], { cwd: dir });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.tensors).toBeGreaterThan(10);
    expect(out.detections).toBe(1);
    expect(out.error).toMatchObject({ name: 'NativeAddonError', code: 'NOT_FOUND', isClass: true });
    expect(out.error.message).not.toContain('\n');
    expect(out.error.message).toContain(`${process.platform}-${process.arch}`);
    expect(out.error.message).toMatch(/install script.*`npm rebuild paligemma` with a C\+\+ toolchain/);
  });

  it('the CLI prints the same fix, exit status 1', async () => {
    const r = await run(path.join(dir, 'node_modules/.bin/paligemma'), ['features'], { cwd: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^paligemma features: no paligemma native addon for .*Fix: /);
    expect(r.stderr).not.toContain('bug');
  });

  it('`npm rebuild paligemma` compiles the addon from the tarball, and the model runs', async () => {
    const r = await run('npm', ['rebuild', 'paligemma', '--foreground-scripts'], { cwd: dir, env: { ...cleanEnv, JOBS: 'max' } });
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(path.join(dir, 'node_modules/paligemma/build/Release/paligemma.node'))).toBe(true);
    const { verdict } = await goldenCheck(dir);
    expect(verdict).toMatchObject({ ok: true, simd: simdVariant() });
  });
});
