/**
 * The native surface (lib/native.ts): what each addon exports, and the NativeModel handle's layered
 * prefill — a prefill run a few layers per call, with decode steps of other sequences in between,
 * gives the bits of a prefill in one call, and so do the decodes around it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { convertCheckpoint } from '../lib/convert/index.js';
import { locateModelFiles } from '../lib/model/files.js';
import { textSpec } from '../lib/model/native-spec.js';
import { loadTestAddon, native, type NativeModel } from '../lib/native.js';
import { FIXTURE_DIR } from './helpers/golden.js';

let dir: string;
let handle: NativeModel;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-native-model-'));
  const files = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f16' });
  const text = (await locateModelFiles({ model: files.textPath, requireProjector: false })).text;
  expect(text.blockCount).toBe(2); // the tiny model: a layer per call splits its prefill in two
  handle = new native.NativeModel({ text: textSpec(text), threads: 2 });
});
afterAll(() => {
  handle?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('the addons', () => {
  it('the shipped addon exports what the package uses, and nothing else', () => {
    expect(Object.keys(native).sort()).toEqual(
      ['NativeModel', 'cpuFeatures', 'gemmAsync', 'quantizeRowsAsync', 'resizeRgb', 'setSimdVariant', 'simdVariant', 'simdVariants'],
    );
  });

  it('the test addon holds the kernel bindings and test hooks, beside the runtime functions', () => {
    const test = loadTestAddon();
    expect(Object.keys(test).sort()).toEqual([
      'add', 'attention', 'cpuFeatures', 'dequantizeRows', 'dropPageCache', 'embedRows', 'geglu', 'geluTanh', 'gemm', 'gemmGeglu', 'gemv', 'layerNorm', 'patchEmbed',
      'poolSize', 'rmsNorm', 'ropeNeox', 'scale', 'setSimdVariant', 'simdVariant', 'simdVariants', 'testPoolChurnAsync',
      'testSleepAsync', 'testTruncatedMapAsync', 'timeMatmul',
    ]);
    expect(test.simdVariant()).toBe(native.simdVariant());
  });
});

describe('dropPageCache (the bench warms the page cache from scratch with it)', () => {
  it('drops a file from the page cache on Linux, leaving its bytes as they were; names a file it cannot open', () => {
    const test = loadTestAddon();
    const file = path.join(dir, 'drop-me.bin');
    const bytes = Buffer.from(Array.from({ length: 3 * 4096 + 5 }, (_, i) => (i * 7) & 255));
    writeFileSync(file, bytes);
    expect(test.dropPageCache(file)).toBe(process.platform === 'linux');
    expect(readFileSync(file).equals(bytes)).toBe(true);
    if (process.platform === 'linux') expect(() => test.dropPageCache(path.join(dir, 'missing.bin'))).toThrow(/missing\.bin: cannot open/);
    expect(() => test.dropPageCache(7 as never)).toThrow(TypeError);
  });
});

describe('a prefill in layers', () => {
  const prompt = Int32Array.of(2, 21209, 659, 108, 1000, 2000, 3000);
  const other = Int32Array.of(2, 100, 200, 108);

  /** The logits of decode steps feeding `ids` to sequence `seq`, one step each. */
  async function decodeSteps(seq: number, ids: number[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (const id of ids) out.push(await handle.decode(Int32Array.of(seq), Int32Array.of(id)));
    return out;
  }

  it('a layer per call, with decode steps of another sequence in between, gives the bits of one call', async () => {
    // Reference: each sequence on its own, every prefill in one call.
    const whole = await handle.prefill(0, null, prompt, { capture: true, logitsRows: 3 });
    const wholeNext = await decodeSteps(0, [5, 6]);
    await handle.prefill(1, null, other);
    const otherAlone = await decodeSteps(1, [7, 8, 9]);

    // Again, sequence 0's prefill split by layers while sequence 1 decodes.
    await handle.prefill(1, null, other);
    const first = await handle.prefill(0, null, prompt, { capture: true, logitsRows: 3, layers: 1 });
    expect(first).toEqual({ done: false });
    const interleaved = await decodeSteps(1, [7]);
    expect(() => handle.decode(Int32Array.of(0), Int32Array.of(5))).toThrow(/sequence 0 has a prefill in progress/);
    const last = await handle.continuePrefill(0, 5); // more layers than are left: runs the rest
    expect(last.done).toBe(true);
    if (!last.done) return;
    expect(last.logits).toEqual(whole.logits);
    expect(last.decoderInput).toEqual(whole.decoderInput);
    expect(last.layerOut).toEqual(whole.layerOut);
    expect(last.finalHidden).toEqual(whole.finalHidden);
    interleaved.push(...(await decodeSteps(1, [8, 9])));
    expect(interleaved).toEqual(otherAlone);
    expect(await decodeSteps(0, [5, 6])).toEqual(wholeNext);
  });

  it('refuses what a prefill in progress does not allow, and a new prefill or release drops it', async () => {
    expect((await handle.prefill(2, null, other, { layers: 1 })).done).toBe(false);
    expect(() => handle.decode(Int32Array.of(2), Int32Array.of(5))).toThrow(/sequence 2 has a prefill in progress/);
    expect(() => handle.continuePrefill(3)).toThrow(/sequence 3 has no prefill in progress/);
    expect(() => handle.continuePrefill(2, 0)).toThrow(/layers must be at least 1/);
    expect(() => handle.prefill(2, null, other, { layers: 0 })).toThrow(/opts\.layers must be an integer in 1\.\./);
    // A new prefill of the same sequence starts over, in one call.
    const again = await handle.prefill(2, null, other);
    expect(again.done).toBe(true);
    expect(() => handle.continuePrefill(2)).toThrow(/no prefill in progress/);
    // releaseSequences drops a prefill in progress with its sequence.
    expect((await handle.prefill(3, null, other, { layers: 1 })).done).toBe(false);
    handle.releaseSequences(3);
    expect(() => handle.continuePrefill(3)).toThrow(/no prefill in progress/);
    expect(() => handle.decode(Int32Array.of(3), Int32Array.of(5))).toThrow(/sequence 3 has no prefill/);
  });
});

describe('releaseSequence', () => {
  const ids = Int32Array.of(2, 100, 200, 108);

  it('frees one sequence (and its prefill in progress); the others go on with the same bits', async () => {
    await handle.prefill(0, null, ids);
    const alone = await handle.decode(Int32Array.of(0), Int32Array.of(5));
    await handle.prefill(0, null, ids);
    await handle.prefill(1, null, ids);
    expect((await handle.prefill(2, null, ids, { layers: 1 })).done).toBe(false);
    const busy = handle.decode(Int32Array.of(1), Int32Array.of(5));
    expect(() => handle.releaseSequence(1)).toThrow(/busy/);
    await busy;
    handle.releaseSequence(1);
    handle.releaseSequence(2);
    handle.releaseSequence(7); // never used: nothing to free
    expect(() => handle.decode(Int32Array.of(1), Int32Array.of(5))).toThrow(/sequence 1 has no prefill/);
    expect(() => handle.continuePrefill(2)).toThrow(/no prefill in progress/);
    expect(await handle.decode(Int32Array.of(0), Int32Array.of(5))).toEqual(alone);
    expect(() => handle.releaseSequence(64)).toThrow(/sequence must be below 64/);
  });
});

describe('decode into a caller-owned array', () => {
  const ids = Int32Array.of(2, 100, 200, 108);

  it('writes the bits a fresh array gets, in place, for a batch; refuses a short or mistyped array', async () => {
    await handle.prefill(0, null, ids);
    await handle.prefill(1, null, Int32Array.of(2, 300, 108));
    const fresh = await handle.decode(Int32Array.of(0, 1), Int32Array.of(5, 6));
    const vocab = fresh.length / 2;
    await handle.prefill(0, null, ids);
    await handle.prefill(1, null, Int32Array.of(2, 300, 108));
    const into = new Float32Array(2 * vocab + 3).fill(Number.NaN);
    expect(await handle.decode(Int32Array.of(0, 1), Int32Array.of(5, 6), into)).toBeUndefined();
    expect(into.subarray(0, 2 * vocab)).toEqual(fresh);
    expect(Array.from(into.subarray(2 * vocab), Number.isNaN)).toEqual([true, true, true]); // nothing past the rows
    expect(() => handle.decode(Int32Array.of(0, 1), Int32Array.of(7, 8), new Float32Array(2 * vocab - 1))).toThrow(
      RangeError,
    );
    expect(() => handle.decode(Int32Array.of(0), Int32Array.of(7), new Int32Array(vocab) as never)).toThrow(/Float32Array/);
    handle.releaseSequences(0);
  });
});
