/**
 * What `npm pack` puts in the tarball (dry run, from the current dist/ and prebuilds/): everything
 * a user's install needs — JavaScript for import and require, declarations, the native sources for
 * the fallback source build, prebuilds, LICENSE — and nothing else: no tests, fixtures, caches or
 * build intermediates, and no source map without its sources.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let files: Set<string>;

/** Every file under `dir` (relative to the project, forward slashes), as npm names them. */
function filesUnder(dir: string): string[] {
  return readdirSync(path.join(projectRoot, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(projectRoot, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

beforeAll(() => {
  if (!existsSync(path.join(projectRoot, 'dist/cjs/index.js'))) throw new Error('dist/ is not built: run `npm run build:ts`');
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: projectRoot, encoding: 'utf8' });
  files = new Set((JSON.parse(out) as [{ files: { path: string }[] }])[0].files.map((f) => f.path));
});

describe('npm pack', () => {
  it('has the license, the readme and both module formats with their declarations', () => {
    for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/cjs/package.json']) {
      expect(files, f).toContain(f);
    }
    expect(readFileSync(path.join(projectRoot, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} the paligemma authors\n/);
  });

  it('has every file package.json points at (main, types, bin, exports)', () => {
    const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8'));
    const targets: string[] = [pkg.main, pkg.types, ...Object.values(pkg.bin as Record<string, string>)];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') targets.push(v);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(pkg.exports);
    for (const t of targets) expect(files, t).toContain(path.posix.normalize(t));
  });

  it('has what a source build needs: binding.gyp, CMakeLists.txt and every native source', () => {
    expect(files).toContain('binding.gyp');
    expect(files).toContain('CMakeLists.txt');
    for (const f of filesUnder('native')) expect(files, f).toContain(f);
    const gypSources = readFileSync(path.join(projectRoot, 'binding.gyp'), 'utf8').match(/native\/[\w/]+\.cc/g)!;
    expect(gypSources.length).toBeGreaterThan(10);
    for (const f of gypSources) expect(files, f).toContain(f);
  });

  it('has the prebuilt binaries that are present, and not the test addons beside them', () => {
    // `npm run prebuild` leaves each platform's test addon beside its addon (scripts/test-arm64.sh loads it there).
    const prebuilds = existsSync(path.join(projectRoot, 'prebuilds')) ? filesUnder('prebuilds') : [];
    for (const f of prebuilds) if (!f.endsWith('/paligemma_test.so')) expect(files, f).toContain(f);
    for (const f of files) if (f.startsWith('prebuilds/')) expect(f).toMatch(/^prebuilds\/[a-z0-9]+-[a-z0-9]+\/paligemma(\.glibc)?\.node$/);
  });

  it('has no tests, fixtures, benchmarks, scripts, caches or build intermediates', () => {
    const forbidden = /^(test|bench|scripts|\.ci|\.cache|node_modules|build|build-[^/]*|tmp)\/|fixtures|\.(o|a|obj|lib|tgz|log|gguf|safetensors)$|^\.|\/\./;
    expect([...files].filter((f) => forbidden.test(f))).toEqual([]);
  });

  it('ships a source map only with every source it names', () => {
    const maps = [...files].filter((f) => f.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(10);
    for (const map of maps) {
      const { sources, sourceRoot = '' } = JSON.parse(readFileSync(path.join(projectRoot, map), 'utf8')) as { sources: string[]; sourceRoot?: string };
      for (const s of sources) expect(files, `${map} -> ${s}`).toContain(path.posix.join(path.posix.dirname(map), sourceRoot, s));
    }
  });
});
