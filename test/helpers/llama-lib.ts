/**
 * llama.cpp's prebuilt libraries inside the bench's node-llama-cpp install (bench/llama.ts installs it on
 * demand into the bench cache), for tests that compare against llama.cpp when it is there.
 */
import fs from 'node:fs';
import path from 'node:path';

import { NODE_LLAMA_CPP_VERSION } from '../../bench/llama.js';
import { benchCacheDir } from '../../bench/model-files.js';

/** `<cache>/llama/node_modules`, where the bench installs node-llama-cpp. */
export function llamaModulesDir(): string {
  return path.join(benchCacheDir(), 'llama', 'node_modules');
}

/**
 * The CPU build's libggml-base.so for this platform (it exports llama.cpp's reference quantizers), or
 * why there is none.
 */
export function findLlamaBaseLibrary(): { path: string } | { missing: string } {
  const modules = llamaModulesDir();
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(modules, 'node-llama-cpp', 'package.json'), 'utf8')) as { version: string };
    if (pkg.version !== NODE_LLAMA_CPP_VERSION) return { missing: `node-llama-cpp ${pkg.version} in ${modules} is not ${NODE_LLAMA_CPP_VERSION}` };
  } catch {
    return { missing: `node-llama-cpp ${NODE_LLAMA_CPP_VERSION} is not installed in ${modules} (npm run bench installs it)` };
  }
  if (process.platform !== 'linux') return { missing: `the oracle uses the Linux build of llama.cpp; this is ${process.platform}` };
  const platform = `linux-${process.arch}`;
  const lib = path.join(modules, '@node-llama-cpp', platform, 'bins', platform, 'libggml-base.so');
  return fs.existsSync(lib) ? { path: lib } : { missing: `${lib} is missing` };
}
