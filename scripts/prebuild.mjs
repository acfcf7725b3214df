#!/usr/bin/env node
// `npm run prebuild [-- TARGET...]`: the prebuilt binaries the package ships, written to
// prebuilds/<platform>-<arch>/ where node-gyp-build finds them. One N-API binary per platform and
// architecture serves every Node >= 20 and Electron. TARGETs (default: all):
//   linux-x64    prebuildify + node-gyp (binding.gyp); every x64 SIMD variant, picked at load time
//   linux-arm64  the same through Debian's cross compiler (g++-aarch64-linux-gnu); the NEON kernels
//   win32-x64    CMakeLists.txt with MinGW-w64 (g++-mingw-w64-x86-64, cmake); C++ runtime linked in
// The Linux files carry the libc tag (paligemma.glibc.node), so musl systems compile from source.
// Builds run in a scratch directory: the development build in build/ is left alone.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOST_TRIPLES = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

/** Runs a command with inherited output; exits this script if it fails. */
function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...options });
  if (r.error?.code === 'ENOENT') fail(`${cmd} not found`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
}

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

/** Fails early, with the Debian package to install, when a compiler is missing. */
function requireTool(tool, debianPackage) {
  if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).error)
    fail(`${tool} not found (apt-get install ${debianPackage})`);
}

/** A fresh prebuilds/<name>/ directory. */
function outputDir(name) {
  const dir = path.join(root, 'prebuilds', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** linux-<arch> through prebuildify and node-gyp, cross-compiling when arch is not the host's. */
function linux(arch, scratch) {
  const prefix = arch === process.arch ? '' : `${HOST_TRIPLES[arch]}-`;
  requireTool(`${prefix}g++`, `g++${prefix ? `-${HOST_TRIPLES[arch]}` : ''}`);
  // node-gyp builds into ./build: give it a directory of its own that sees the sources.
  for (const f of ['native', 'binding.gyp', 'package.json', 'node_modules']) {
    symlinkSync(path.join(root, f), path.join(scratch, f));
  }
  outputDir(`linux-${arch}`);
  const env = {
    ...process.env,
    CC: `${prefix}gcc`,
    CXX: `${prefix}g++`,
    LINK: `${prefix}g++`,
    AR: `${prefix}ar`,
    JOBS: 'max',
  };
  const prebuildify = path.join(root, 'node_modules', 'prebuildify', 'bin.js');
  run(process.execPath, [prebuildify, '--napi', '--strip', `--strip-bin=${prefix}strip`, '--tag-libc',
    `--arch=${arch}`, '--platform=linux', `--out=${root}`, scratch], { env });
}

/** win32-x64 through CMake and MinGW-w64 (its posix thread model: std::thread and std::mutex). */
function win32(scratch) {
  const cxx = 'x86_64-w64-mingw32-g++-posix';
  requireTool(cxx, 'g++-mingw-w64-x86-64');
  requireTool('cmake', 'cmake');
  const build = path.join(scratch, 'build');
  run('cmake', ['-S', root, '-B', build, '-DCMAKE_SYSTEM_NAME=Windows', '-DCMAKE_SYSTEM_PROCESSOR=AMD64',
    `-DCMAKE_CXX_COMPILER=${cxx}`, '-DCMAKE_BUILD_TYPE=Release'], { stdio: ['ignore', 'ignore', 'inherit'] });
  run('cmake', ['--build', build, '--target', 'paligemma', '--parallel', String(os.availableParallelism())]);
  const out = path.join(outputDir('win32-x64'), 'paligemma.node');
  run('x86_64-w64-mingw32-strip', ['--strip-all', '-o', out, path.join(build, 'paligemma.node')]);
}

const TARGETS = {
  'linux-x64': (scratch) => linux('x64', scratch),
  'linux-arm64': (scratch) => linux('arm64', scratch),
  'win32-x64': win32,
};

if (process.platform !== 'linux') fail('the prebuilds are made on Linux (cross compilers from Debian)');
const wanted = process.argv.slice(2);
for (const t of wanted) if (!(t in TARGETS)) fail(`unknown target ${t} (known: ${Object.keys(TARGETS).join(', ')})`);
for (const target of wanted.length ? wanted : Object.keys(TARGETS)) {
  const scratch = mkdtempSync(path.join(os.tmpdir(), `pg-prebuild-${target}-`));
  const started = Date.now();
  try {
    console.log(`prebuild: ${target}`);
    TARGETS[target](scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`prebuild: ${target} done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
