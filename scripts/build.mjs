#!/usr/bin/env node
// `npm run build:ts` (and `prepare`): the JavaScript the package ships, from a clean dist/.
//  - dist/: tsc's ESM output with declarations and source maps (lib/ ships too, for the maps).
//  - dist/cjs/: for `require('paligemma')` on every Node >= 20 (require(esm) is not in all of
//    them): dist/index.js bundled into one CommonJS file, the declarations copied beside it, and a
//    package.json saying "commonjs" so that Node and TypeScript read both as CommonJS.
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const out = path.join(dist, 'cjs');

rmSync(dist, { recursive: true, force: true }); // no stale files from deleted sources
const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, 'package.json'), '{ "type": "commonjs" }\n');

await build({
  entryPoints: [path.join(dist, 'index.js')],
  outfile: path.join(out, 'index.js'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  packages: 'external', // dependencies stay require() calls
  sourcemap: true, // chained through tsc's maps back to lib/*.ts
  // import.meta.url has no CommonJS meaning; this file's own URL is what the code wants from it.
  define: { 'import.meta.url': 'importMetaUrl' },
  banner: { js: "const importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});

// Declarations: the same files, read as CommonJS because of the package.json above.
for (const file of readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
  if (!file.endsWith('.d.ts') || file.startsWith(`cjs${path.sep}`)) continue;
  mkdirSync(path.dirname(path.join(out, file)), { recursive: true });
  copyFileSync(path.join(dist, file), path.join(out, file));
}
