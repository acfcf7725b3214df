/**
 * Loads the native addon (a prebuild from `prebuilds/`, else the local `build/`) and types its
 * surface. Everything else in `lib/` reaches native code through this module.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { PaliGemmaError } from './errors.js';

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

/** Why a SIMD variant was refused. */
export type SimdErrorCode =
  /** The variant is not compiled into this build, or this CPU cannot run it (the message says which). */
  'UNSUPPORTED_VARIANT';

/** Thrown when a requested SIMD variant is unknown or the CPU cannot run it. */
export class SimdError extends PaliGemmaError<SimdErrorCode> {
  override name = 'SimdError';
  constructor(message: string, code: SimdErrorCode = 'UNSUPPORTED_VARIANT') {
    super(code, message);
  }
}

const require = createRequire(import.meta.url);
// Both lib/native.ts (tests) and dist/native.js (package) sit one level below the package root.
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function loadAddon(): NativeAddon {
  // PALIGEMMA_ADDON names a specific build (e.g. the cmake-js output) in place of the usual lookup.
  const explicit = process.env.PALIGEMMA_ADDON;
  const load = require('node-gyp-build') as (dir: string) => NativeAddon;
  const addon = explicit ? (require(path.resolve(explicit)) as NativeAddon) : load(packageRoot);
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

/** The loaded addon. Loading happens once, at import. */
export const native: NativeAddon = loadAddon();

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
