/**
 * Loads the native addon (a prebuild from `prebuilds/`, else the local `build/`) and types its
 * surface. Everything else in `lib/` reaches native code through this module.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** A SIMD kernel set compiled into the addon. */
export type SimdVariantName = 'scalar' | 'avx2' | 'avx512' | 'neon';

/** What the CPU (and OS) support, as reported by cpuid / hwcap. */
export interface CpuFeatures {
  arch: 'x64' | 'arm64' | 'other';
  sse42: boolean;
  avx: boolean;
  avx2: boolean;
  fma: boolean;
  f16c: boolean;
  avx512f: boolean;
  avx512bw: boolean;
  avx512vl: boolean;
  avx512dq: boolean;
  avx512bf16: boolean;
  avx512fp16: boolean;
  avx512vnni: boolean;
  neon: boolean;
  asimdhp: boolean;
  bf16: boolean;
}

export interface SimdVariantInfo {
  name: SimdVariantName;
  /** Whether this CPU can run the variant. */
  supported: boolean;
  /** The CPU features the variant needs, in words. */
  requires: string;
}

/** The raw addon surface. Later modules add to it; keep this interface in step with native/addon.cc. */
export interface NativeAddon {
  cpuFeatures(): CpuFeatures;
  simdVariant(): SimdVariantName;
  simdVariants(): SimdVariantInfo[];
  setSimdVariant(name: string): void;
}

/** Thrown when a requested SIMD variant is unknown or the CPU cannot run it. */
export class SimdError extends Error {
  override name = 'SimdError';
}

/** Thrown on first use of native code when the addon cannot load; the message says how to fix it. */
export class NativeAddonError extends Error {
  override name = 'NativeAddonError';
  constructor(
    /** NOT_FOUND: no binary for this platform; LOAD_FAILED: one was found but the OS refused it. */
    readonly code: 'NOT_FOUND' | 'LOAD_FAILED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const require = createRequire(import.meta.url);

/** The package root: the nearest directory above this module that holds binding.gyp. */
function packageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url)); // lib/, dist/ or dist/cjs/
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'binding.gyp'))) return dir;
    if (path.dirname(dir) === dir) return path.dirname(here);
  }
}

/** Loads the addon; a failure is one NativeAddonError line with the platform, the file(s) tried and the fix. */
function loadAddon(): NativeAddon {
  const where = `${process.platform}-${process.arch} (Node ${process.versions.node})`;
  const toolchain = process.platform === 'win32' ? 'Visual Studio Build Tools and Python 3' : 'Python 3, make and g++ or clang';
  const rebuild = `run \`npm rebuild paligemma\` with a C++ toolchain (${toolchain})`;
  // PALIGEMMA_ADDON names a specific build (e.g. the cmake-js output) in place of the usual lookup.
  const explicit = process.env.PALIGEMMA_ADDON;
  let file: string;
  if (explicit) {
    file = path.resolve(explicit);
  } else {
    const root = packageRoot();
    const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
    try {
      file = nodeGypBuild.resolve(root); // build/Release, else the best match in prebuilds/
    } catch (cause) {
      const prebuilds = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
      throw new NativeAddonError(
        'NOT_FOUND',
        `no paligemma native addon for ${where}: neither a prebuilt binary in ${prebuilds} nor a build in ${path.join(root, 'build', 'Release')}. ` +
          `Fix: let paligemma's install script run (--ignore-scripts skips it, as pnpm does until the package is approved), or ${rebuild}.`,
        { cause },
      );
    }
  }
  let addon: NativeAddon;
  try {
    addon = require(file) as NativeAddon;
  } catch (cause) {
    const reason = (cause instanceof Error ? cause.message : String(cause)).split('\n')[0];
    throw new NativeAddonError(
      explicit && !existsSync(file) ? 'NOT_FOUND' : 'LOAD_FAILED',
      `the paligemma native addon ${file} does not load on ${where}: ${reason}. ` +
        `Fix: ${explicit ? 'point PALIGEMMA_ADDON at a working build, or unset it' : `${rebuild} to compile it for this system`}.`,
      { cause },
    );
  }
  const requested = process.env.PALIGEMMA_SIMD;
  if (requested) {
    try {
      addon.setSimdVariant(requested);
    } catch (err) {
      throw new SimdError(`PALIGEMMA_SIMD=${requested}: ${(err as Error).message}`);
    }
  }
  return addon;
}

let loaded: NativeAddon | undefined;
const addon = (): NativeAddon => (loaded ??= loadAddon());

/**
 * The addon, loaded on first use rather than at import: the pure-JS exports (formats, tokenizer,
 * task parsers…) work even where it cannot load, and the first native call throws NativeAddonError.
 */
export const native: NativeAddon = new Proxy({} as NativeAddon, {
  get: (_target, key) => Reflect.get(addon(), key),
  set: (_target, key, value) => Reflect.set(addon(), key, value),
  has: (_target, key) => Reflect.has(addon(), key),
});

/** What the CPU supports (cpuid on x64, hwcap on arm64). */
export function cpuFeatures(): CpuFeatures {
  return native.cpuFeatures();
}

/**
 * The SIMD kernel set in use by default: the best one the CPU supports, unless the
 * `PALIGEMMA_SIMD` environment variable (scalar | avx2 | avx512 | neon) chose another at load.
 */
export function simdVariant(): SimdVariantName {
  return native.simdVariant();
}

/** Every kernel set compiled into this build, best first, with whether this CPU can run it. */
export function simdVariants(): SimdVariantInfo[] {
  return native.simdVariants();
}

/** Checks that `name` is a variant this build has and this CPU can run; throws SimdError otherwise. */
export function checkSimdVariant(name: string): SimdVariantName {
  const info = native.simdVariants().find((v) => v.name === name);
  if (!info) {
    const known = native.simdVariants().map((v) => v.name).join(', ');
    throw new SimdError(`unknown SIMD variant '${name}' (this build has: ${known})`);
  }
  if (!info.supported) {
    throw new SimdError(`SIMD variant '${name}' needs ${info.requires}, which this CPU does not have`);
  }
  return info.name;
}
