/**
 * lib/'s module graph: no import cycles (type-only and dynamic imports included: a cycle of any kind
 * means two modules that cannot be understood apart), and the native addons reached through
 * lib/native.ts only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const lib = path.resolve(import.meta.dirname, '../lib');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []);
}

/** Relative imports of each module: static (import/export … from), and dynamic import(). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(lib)) {
    const text = readFileSync(file, 'utf8');
    const specifiers = [
      ...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'/gm),
      ...text.matchAll(/\bimport\('(\.[^']+)'\)/g),
    ].map((m) => m[1]!);
    graph.set(file, specifiers.map((s) => path.resolve(path.dirname(file), s).replace(/\.js$/, '.ts')));
  }
  return graph;
}

describe('lib/ imports', () => {
  it('have no cycles', () => {
    const graph = importGraph();
    expect(graph.size).toBeGreaterThan(40);
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, trail: string[]): void => {
      state.set(file, 'open');
      for (const dep of graph.get(file) ?? []) {
        if (state.get(dep) === 'open') cycles.push([...trail.slice(trail.indexOf(dep)), dep].map((f) => path.relative(lib, f)).join(' → '));
        else if (!state.has(dep)) visit(dep, [...trail, dep]);
      }
      state.set(file, 'done');
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file, [file]);
    expect(cycles).toEqual([]);
  });

  it('reach the native addons through lib/native.ts only', () => {
    const loaders = sources(lib).filter((f) => /node-gyp-build|\.node'|process\.dlopen/.test(readFileSync(f, 'utf8')));
    expect(loaders.map((f) => path.relative(lib, f))).toEqual(['native.ts']);
  });
});
