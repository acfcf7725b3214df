import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpuFeatures, simdVariant, simdVariants } from '../lib/index.js';

/** Runs a snippet in a fresh process (the SIMD override is read once, at load). */
function simdIn(env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const code = `import('./lib/native.ts').then((m) => console.log(m.simdVariant()))`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}

describe('CPU features and SIMD variant selection', () => {
  const f = cpuFeatures();

  it('reports the features the kernel sets depend on', () => {
    for (const key of ['avx2', 'fma', 'f16c', 'avx512f', 'avx512bf16', 'neon'] as const) {
      expect(typeof f[key]).toBe('boolean');
    }
    // Cross-check cpuid with what the kernel saw (Linux x64 only).
    if (process.platform === 'linux' && f.arch === 'x64') {
      const flags = execFileSync('grep', ['-m1', '^flags', '/proc/cpuinfo'], { encoding: 'utf8' }).split(/\s+/);
      expect(f.avx2).toBe(flags.includes('avx2'));
      expect(f.fma).toBe(flags.includes('fma'));
      expect(f.f16c).toBe(flags.includes('f16c'));
      expect(f.avx512f).toBe(flags.includes('avx512f'));
      expect(f.avx512bf16).toBe(flags.includes('avx512_bf16'));
    }
  });

  it('selects the best kernel set the CPU can run', () => {
    const expected =
      f.arch === 'x64'
        ? f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq
          ? 'avx512'
          : f.avx2 && f.fma && f.f16c
            ? 'avx2'
            : 'scalar'
        : f.neon
          ? 'neon'
          : 'scalar';
    expect(simdVariant()).toBe(expected);
    expect(simdVariants().find((v) => v.name === expected)?.supported).toBe(true);
  });

  it('compiles every variant of the architecture into the build', () => {
    const names = simdVariants().map((v) => v.name);
    expect(names).toEqual(f.arch === 'x64' ? ['avx512', 'avx2', 'scalar'] : f.arch === 'arm64' ? ['neon', 'scalar'] : ['scalar']);
  });

  it('PALIGEMMA_SIMD forces each supported variant', () => {
    for (const v of simdVariants().filter((v) => v.supported)) {
      const r = simdIn({ PALIGEMMA_SIMD: v.name });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(v.name);
    }
  });

  it('PALIGEMMA_SIMD naming an unsupported or unknown variant fails with a clear error', () => {
    for (const v of simdVariants().filter((v) => !v.supported)) {
      const r = simdIn({ PALIGEMMA_SIMD: v.name });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(`SimdError: PALIGEMMA_SIMD=${v.name}`);
      expect(r.stderr).toContain('which this CPU does not have');
    }
    const r = simdIn({ PALIGEMMA_SIMD: 'sse9' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("unknown SIMD variant 'sse9'");
  });
});
