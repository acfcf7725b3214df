/**
 * Where the native addon cannot load, the package still imports: the pure-JS exports work, and the
 * first native call throws NativeAddonError — one line with the platform, the file(s) tried and the
 * fix. (The same from a real install with scripts disabled: test/package/install.test.ts.)
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'pg-addon-loading-'));
const junk = path.join(scratch, 'junk.node');
writeFileSync(junk, 'not a shared library');
const missing = path.join(scratch, 'missing.node');
const saved = { ...process.env };

afterEach(() => {
  process.env = { ...saved };
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The package's public API, imported after `env` is set (nothing below has touched the addon yet). */
async function withEnv(env: Record<string, string | undefined>) {
  Object.assign(process.env, env);
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
  return import('../lib/index.js');
}

describe('an addon that cannot load', () => {
  it('leaves the pure-JS exports working', async () => {
    const pg = await withEnv({ PALIGEMMA_ADDON: missing });
    expect(pg.parseDetections('<loc0000><loc0256><loc0512><loc1023> cat', { width: 100, height: 100 }).detections).toHaveLength(1);
    expect(pg.captionPrompt()).toBe('caption en');
    await expect(pg.readGGUF(junk)).rejects.toThrow(pg.GGUFError);
    expect(typeof pg.Tokenizer.fromGGUF).toBe('function');
  });

  it('a missing PALIGEMMA_ADDON file: NOT_FOUND, naming the file and the way out', async () => {
    const pg = await withEnv({ PALIGEMMA_ADDON: missing });
    const err = captured(() => pg.simdVariants());
    expect(err).toBeInstanceOf(pg.NativeAddonError);
    expect(err).toMatchObject({ name: 'NativeAddonError', code: 'NOT_FOUND' });
    expect(err.message).toContain(missing);
    expect(err.message).toContain(`${process.platform}-${process.arch}`);
    expect(err.message).toContain('PALIGEMMA_ADDON');
    expect(err.message).not.toContain('\n');
  });

  it('a file that is not a shared library: LOAD_FAILED, with the OS reason', async () => {
    const pg = await withEnv({ PALIGEMMA_ADDON: junk });
    const err = captured(() => pg.cpuFeatures());
    expect(err).toMatchObject({ name: 'NativeAddonError', code: 'LOAD_FAILED' });
    expect(err.message).toMatch(new RegExp(`${junk}.*does not load on ${process.platform}-${process.arch}`));
    expect(err.message).not.toContain('\n');
  });

  it('no build and no prebuild: NOT_FOUND says to allow the install script or rebuild with a toolchain', async () => {
    // node-gyp-build's own override points the lookup at an empty package directory.
    const pg = await withEnv({ PALIGEMMA_ADDON: undefined, PALIGEMMA_PREBUILD: scratch });
    const err = captured(() => pg.simdVariant());
    expect(err).toMatchObject({ name: 'NativeAddonError', code: 'NOT_FOUND' });
    expect(err.message).toContain(path.join('prebuilds', `${process.platform}-${process.arch}`));
    expect(err.message).toContain('install script');
    expect(err.message).toContain('`npm rebuild paligemma` with a C++ toolchain');
    expect(err.message).not.toContain('\n');
  });

  it('loadModel rejects with the same error (no file is mapped)', async () => {
    const pg = await withEnv({ PALIGEMMA_ADDON: missing });
    await expect(pg.loadModel({ model: junk, simd: 'scalar' })).rejects.toMatchObject({ name: 'NativeAddonError' });
  });

  it('the CLI prints the message and no "this looks like a bug" hint', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'lib/cli/main.ts'), 'features'], {
      cwd: projectRoot,
      env: { ...process.env, PALIGEMMA_ADDON: missing },
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('paligemma features: the paligemma native addon');
    expect(r.stderr).toContain('Fix:');
    expect(r.stderr).not.toContain('bug');
  });
});

function captured(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}
