/**
 * The native model's surface (lib/native.ts's NativeModel) under hostile arguments: specs corrupted
 * at random (values of other types, NaN, ±Infinity, huge and negative numbers, tensors moved, resized
 * or retyped, strange paths) and method calls with random arguments (arrays of the wrong type or
 * size, ids and sequences out of range, options of every type). Each must construct, resolve, or fail
 * with an Error — never crash, hang or leave the handle unusable. Seeded, so a failure replays; the
 * package's own checks sit in front of this surface, so it is the native checks that are tried here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { convertCheckpoint, type ConvertResult } from '../lib/convert/index.js';
import { locateModelFiles } from '../lib/model/files.js';
import { textSpec, visionSpec } from '../lib/model/native-spec.js';
import { seededRandom } from '../lib/model/sampling.js';
import { native, type NativeModel, type NativeModelSpec } from '../lib/native.js';
import { FIXTURE_DIR } from './helpers/golden.js';

let dir: string;
let tiny: ConvertResult;
let validSpec: NativeModelSpec;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-fuzz-native-'));
  tiny = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f16' });
  const files = await locateModelFiles({ model: tiny.textPath, projector: tiny.projectorPath });
  validSpec = { text: textSpec(files.text), vision: visionSpec(files.projector!), threads: 2 };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const random = seededRandom(1616);
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
const int = (n: number) => Math.floor(random() * n);

/** Values of every kind, hostile ones first. */
function anyValue(): unknown {
  return pick([
    Number.NaN, Infinity, -Infinity, -1, 0, 1, 2 ** 31, 2 ** 53, -(2 ** 31), 1e300, 0.5, 3, 64, 1 << 30,
    '', 'f16', '../../etc/passwd', null, undefined, true, false, {}, [], [1, 2, 3], () => 1, Symbol('x'), 10n,
    new Float32Array(4), new Int32Array(3), new Uint8Array(5), new Float64Array(2),
  ]);
}

/** A deep copy of the valid spec with 1 to 4 random corruptions. */
function corruptSpec(): { spec: Record<string, unknown>; what: string[] } {
  const spec = structuredClone(validSpec) as unknown as Record<string, Record<string, unknown>>;
  const what: string[] = [];
  for (let i = 0, n = 1 + int(4); i < n; i++) {
    const part = pick(['text', 'vision']);
    const p = spec[part] as Record<string, Record<string, unknown>> | undefined;
    const kind = int(7);
    if (!p || typeof p !== 'object') {
      spec[part] = anyValue() as Record<string, unknown>;
      what.push(`${part} = ${String(spec[part])}`);
    } else if (kind === 0) {
      const key = pick(Object.keys(p.config!));
      p.config![key] = anyValue();
      what.push(`${part}.config.${key} = ${String(p.config![key])}`);
    } else if (kind <= 3) {
      const name = pick(Object.keys(p.tensors!));
      const t = p.tensors![name] as unknown as Record<string, unknown>;
      const field = pick(['offset', 'type', 'dims', 'dims0']);
      if (field === 'dims0') (t.dims as unknown[])[0] = anyValue();
      else if (field === 'dims') t.dims = pick([[], [1], [48, 48, 48, 48, 48], anyValue()]);
      // Retyped to every type the kernels run (quantized ones too: their blocks change the byte size), to unknown ids, or to junk.
      else if (field === 'type') t.type = pick([0, 1, 2, 6, 8, 12, 14, 30, 39, 1000, anyValue()]);
      else t[field] = anyValue();
      what.push(`${part}.tensors.${name}.${field}`);
    } else if (kind === 4) {
      delete p.tensors![pick(Object.keys(p.tensors!))];
      what.push(`${part}: a tensor deleted`);
    } else if (kind === 5) {
      (p as Record<string, unknown>).path = pick([path.join(dir, 'missing.gguf'), dir, '', '/dev/null', tiny.projectorPath, tiny.textPath]);
      what.push(`${part}.path = ${String(p.path)}`);
    } else {
      const key = pick(['threads', 'simd', 'lockMemory']);
      (spec as Record<string, unknown>)[key] = anyValue();
      what.push(`${key} = ${String((spec as Record<string, unknown>)[key])}`);
    }
  }
  return { spec, what };
}

/** Runs `call` (sync throw or Promise): it must succeed or fail with an Error. */
async function survives(call: () => unknown, what: string): Promise<'ok' | 'error'> {
  try {
    await call();
    return 'ok';
  } catch (err) {
    expect(err, what).toBeInstanceOf(Error);
    return 'error';
  }
}

describe('NativeModel under hostile arguments', () => {
  it('300 corrupted specs: each constructs or throws an Error', async () => {
    const outcomes = { ok: 0, error: 0 };
    for (let i = 0; i < 300; i++) {
      const { spec, what } = corruptSpec();
      const label = `#${i}: ${what.join('; ')}`;
      let handle: NativeModel | undefined;
      outcomes[await survives(() => (handle = new native.NativeModel(spec as unknown as NativeModelSpec)), label)]++;
      handle?.dispose();
    }
    expect(outcomes.error).toBeGreaterThan(200); // most corruptions are caught, not run
  });

  it('2000 method calls with random arguments: each resolves or fails with an Error, and the handle still works', async () => {
    const handle = new native.NativeModel(validSpec);
    try {
      const vocab = 257216;
      const ids = () => pick([Int32Array.of(2, 100, 108), Int32Array.from({ length: 1 + int(40) }, () => int(vocab)), Int32Array.of(-1), Int32Array.of(vocab), new Int32Array(0), anyValue()]);
      const features = () => pick([null, new Float32Array(48 * (1 + int(20))), new Float32Array(47), new Float32Array(0), anyValue()]);
      const options = () => pick([undefined, {}, { [pick(['logitsRows', 'topK', 'layers', 'capacity', 'capture'])]: anyValue() }, anyValue()]);
      const calls: (() => unknown)[] = [
        () => handle.prefill(pick([0, 1, 63, 64, -1, anyValue()]) as number, features() as Float32Array, ids() as Int32Array, options() as object),
        () => handle.continuePrefill(pick([0, 1, 64, anyValue()]) as number, pick([undefined, 0, 1, 5, anyValue()]) as number),
        () => handle.decode(pick([Int32Array.of(0), Int32Array.of(0, 0), Int32Array.of(1, 2), Int32Array.of(64), new Int32Array(65), anyValue()]) as Int32Array, ids() as Int32Array),
        () => handle.encodeImages(pick([new Float32Array(3 * 56 * 56), new Float32Array(3 * 56 * 56 * 2), new Float32Array(3 * 56 * 56 - 1), new Float32Array(0), anyValue()]) as Float32Array),
        () => handle.releaseSequences(pick([0, 1, 64, 1e9, -1, anyValue()]) as number),
        () => handle.kvCacheBytes(pick([undefined, 0, 63, 64, -1, anyValue()]) as number),
      ];
      let ok = 0;
      for (let i = 0; i < 2000; i++) {
        const call = pick(calls);
        if ((await survives(call, `#${i}: ${call.toString().slice(0, 80)}`)) === 'ok') ok++;
      }
      expect(ok).toBeGreaterThan(100);
      // Still a working model.
      const r = await handle.prefill(0, null, Int32Array.of(2, 21209, 659, 108));
      expect(r.logits).toHaveLength(vocab);
      expect(Number.isFinite(r.logits[0])).toBe(true);
    } finally {
      handle.dispose();
    }
  });
});
