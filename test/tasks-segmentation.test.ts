import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeGGUF, GGUFError, type GGUFTensorInput } from '../lib/gguf/index.js';
import { simdVariants } from '../lib/native.js';
import {
  MASK_SIZE,
  NpzError,
  SEGMENTATION_GGUF_ARCH,
  SegmentationDecoder,
  TaskError,
  decodeSegmentation,
  maskForBox,
  readNpz,
  segmentationDecoderGGUF,
  segmentationTensorNames,
  type NpyArray,
} from '../lib/tasks/index.js';
import { exactF16Bits, npzBytes, type NpyInput } from './helpers/npz.js';
import { conv2d, convTranspose2d, transposeConvTWeight } from '../lib/tasks/conv.js';
import { randomF32, rng, worstRatio } from './helpers/reference.js';
import { VAE_OID_SHAPE, randomVae, referenceDecode, refConv, refFlaxConvTranspose, type RefMap, type VaeShape } from './helpers/vae.js';

const SMALL: VaeShape = { codes: 10, dim: 8, width: 8, upsample: [6, 5, 4, 3] };
const variants = simdVariants().filter((v) => v.supported).map((v) => v.name);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'paligemma-tasks-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function toNpy(tensors: Map<string, NpyArray>, dtype: NpyInput['dtype'] = '<f4'): Map<string, NpyInput> {
  return new Map([...tensors].map(([name, a]) => [name, { shape: a.shape, data: a.data, dtype }]));
}

async function saveNpz(name: string, arrays: Map<string, NpyInput>, options: Parameters<typeof npzBytes>[1] = {}): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, npzBytes(arrays, options));
  return file;
}

/** The decoder tensors as a GGUF written directly with writeGGUF: F32 or F16, dims in ggml order. */
async function saveGGUF(name: string, tensors: Map<string, NpyArray>, type: 'F32' | 'F16', arch = SEGMENTATION_GGUF_ARCH): Promise<string> {
  const file = path.join(dir, name);
  const list: GGUFTensorInput[] = [...tensors].map(([n, a]) => ({
    name: n,
    type,
    dims: [...a.shape].reverse(),
    data: type === 'F32' ? a.data : Uint16Array.from(a.data, exactF16Bits),
  }));
  await writeGGUF(file, { metadata: { 'general.architecture': { type: 'string', value: arch } }, tensors: list });
  return file;
}

/** Random float32 values, uniform in [-1, 1). */
function randomMap(h: number, w: number, c: number, seed: number): RefMap & { data: Float32Array } {
  const data = randomF32(h * w * c, rng(seed));
  return { data, v: Float64Array.from(data), h, w, c };
}

function randomLayer(dims: number[], seed: number): NpyArray {
  return { shape: dims, data: randomF32(dims.reduce((a, b) => a * b, 1), rng(seed)) };
}

describe('convolutions on the native GEMM against direct float64 loops', () => {
  // Tolerance: each output of a float32 layer is within γ(j)·(Σ|x·w| + |bias|) of the exact value for
  // the same float32 inputs (j = roundings per output; test/helpers/vae.ts), a rigorous bound. A wrong
  // tap, padding or layout moves outputs by whole terms, far beyond it.
  const cases = [
    { h: 4, w: 4, cin: 128, cout: 128, k: 3 },
    { h: 3, w: 5, cin: 7, cout: 6, k: 3 },
    { h: 4, w: 4, cin: 512, cout: 128, k: 1 },
    { h: 2, w: 6, cin: 5, cout: 3, k: 5 },
  ];
  for (const simd of variants) {
    it(`conv2d (stride 1, same padding) for 1×1, 3×3 and 5×5 kernels (${simd})`, async () => {
      for (const [i, c] of cases.entries()) {
        const x = randomMap(c.h, c.w, c.cin, 10 + i);
        const weight = randomLayer([c.cout, c.cin, c.k, c.k], 20 + i);
        const bias = randomLayer([c.cout], 30 + i);
        const got = await conv2d({ data: x.data, height: c.h, width: c.w, channels: c.cin }, { weight: weight.data, bias: bias.data, cin: c.cin, cout: c.cout, kernel: c.k }, simd);
        const ref = refConv(x, weight, bias);
        expect([got.height, got.width, got.channels]).toEqual([c.h, c.w, c.cout]);
        const worst = worstRatio(got.data, ref.v, ref.bound);
        expect(worst.ratio, `case ${i}, output ${worst.index}`).toBeLessThanOrEqual(1);
      }
    });

    it(`convTranspose2d equals Flax ConvTranspose(padding=k−1−p, transpose_kernel=True) (${simd})`, async () => {
      const tcases = [
        { h: 4, w: 4, cin: 128, cout: 128, k: 4, s: 2, p: 1 },
        { h: 3, w: 5, cin: 6, cout: 4, k: 4, s: 2, p: 1 },
        { h: 2, w: 3, cin: 5, cout: 3, k: 3, s: 2, p: 0 },
        { h: 3, w: 2, cin: 4, cout: 2, k: 5, s: 3, p: 2 },
      ];
      for (const [i, c] of tcases.entries()) {
        const x = randomMap(c.h, c.w, c.cin, 40 + i);
        const weight = randomLayer([c.cin, c.cout, c.k, c.k], 50 + i);
        const bias = randomLayer([c.cout], 60 + i);
        const got = await convTranspose2d(
          { data: x.data, height: c.h, width: c.w, channels: c.cin },
          { weightT: transposeConvTWeight(weight.data, c.cin, c.cout, c.k), bias: bias.data, cin: c.cin, cout: c.cout, kernel: c.k, stride: c.s, padding: c.p },
          simd,
        );
        const ref = refFlaxConvTranspose(x, weight, bias, { stride: c.s, padding: c.k - 1 - c.p });
        expect([got.height, got.width, got.channels]).toEqual([ref.h, ref.w, c.cout]);
        const worst = worstRatio(got.data, ref.v, ref.bound);
        expect(worst.ratio, `case ${i}, output ${worst.index}`).toBeLessThanOrEqual(1);
      }
    });
  }
});

/**
 * End-to-end tolerance. Every layer is checked above against a rigorous bound; through 12 layers such
 * bounds compound by Σ|w| per layer and become useless, so here the check is relative to the output's
 * scale: |got − exact| ≤ 1e-4 · max|exact|. Justification: the random layers are scaled to keep
 * activations O(1) (weight variance 1/fan-in), each layer adds a relative rounding error of at most
 * γ(j) ≤ 1160·2⁻²⁴ ≈ 7e-5 (j ≤ 9·128 + 8) and typically √j·2⁻²⁴ ≈ 2e-6, and that error is carried forward
 * like the signal; 12 layers of typical error stay near 2e-5 of the output scale. A wrong layer order,
 * ReLU, residual or code layout changes the output by O(max|exact|), which the "can tell" test shows.
 */
const E2E_RTOL = 1e-4;

function e2eError(got: Float32Array, exact: Float64Array): number {
  let scale = 0;
  let err = 0;
  exact.forEach((v, i) => {
    scale = Math.max(scale, Math.abs(v));
    err = Math.max(err, Math.abs(got[i]! - v));
  });
  return err / scale;
}

async function expectMatchesReference(decoder: SegmentationDecoder, tensors: Map<string, NpyArray>, codes: number[]): Promise<void> {
  const { logits64 } = await decoder.decode(codes);
  expect(logits64).toHaveLength(MASK_SIZE * MASK_SIZE);
  const exact = referenceDecode(tensors, codes);
  // A constant output would make the comparison weak: the random decoder must produce a varied mask.
  expect(Math.max(...exact) - Math.min(...exact)).toBeGreaterThan(0.1);
  expect(e2eError(logits64, exact)).toBeLessThanOrEqual(E2E_RTOL);
}

describe('SegmentationDecoder against the float64 Flax-literal reference', () => {
  const tensors = randomVae(SMALL, 1);
  const codeSets = [
    Array.from({ length: 16 }, (_, i) => i % SMALL.codes),
    Array.from({ length: 16 }, (_, i) => (i * 7 + 3) % SMALL.codes),
  ];

  for (const simd of variants) {
    it(`matches on small random weights (${simd})`, async () => {
      const decoder = SegmentationDecoder.fromTensors(tensors, { simd });
      expect(decoder.codebookSize).toBe(SMALL.codes);
      expect(decoder.embeddingDim).toBe(SMALL.dim);
      for (const codes of codeSets) await expectMatchesReference(decoder, tensors, codes);
    });
  }

  it('can tell a wrong kernel flip or code layout from the right one', async () => {
    const decoder = SegmentationDecoder.fromTensors(tensors);
    const codes = codeSets[1]!;
    const { logits64 } = await decoder.decode(codes);
    for (const variant of [{ noFlip: true }, { columnMajor: true }]) {
      expect(e2eError(logits64, referenceDecode(tensors, codes, variant)), JSON.stringify(variant)).toBeGreaterThan(100 * E2E_RTOL);
    }
  });

  it("matches at vae-oid's real sizes (codebook 128 × 512, 128 channels, 128/64/32/16 upsampling)", async () => {
    const big = randomVae(VAE_OID_SHAPE, 2);
    const decoder = SegmentationDecoder.fromTensors(big);
    expect([decoder.codebookSize, decoder.embeddingDim]).toEqual([128, 512]);
    await expectMatchesReference(decoder, big, Array.from({ length: 16 }, (_, i) => (i * 41 + 5) % 128));
  });

  it('rejects codes that are not 16 integers inside the codebook', async () => {
    const decoder = SegmentationDecoder.fromTensors(tensors);
    for (const codes of [[], Array(15).fill(0), Array(17).fill(0), [...Array(15).fill(0), SMALL.codes], [...Array(15).fill(0), -1], [...Array(15).fill(0), 1.5]]) {
      await expect(decoder.decode(codes)).rejects.toMatchObject({ name: 'TaskError', code: 'BAD_CODES' });
    }
    await expect(decoder.decode(undefined as unknown as number[])).rejects.toMatchObject({ code: 'BAD_CODES' });
  });
});

describe('SegmentationDecoder files', () => {
  const tensors = randomVae(SMALL, 3);
  const codes = Array.from({ length: 16 }, (_, i) => (i * 3) % SMALL.codes);
  let expected: Float32Array;
  beforeAll(async () => {
    expected = (await SegmentationDecoder.fromTensors(tensors).decode(codes)).logits64;
  });

  /** Every file form holds the same (F16-exact) weights, so every decoder must give identical output. */
  async function expectSameOutput(file: string): Promise<void> {
    const decoder = await SegmentationDecoder.load(file);
    expect((await decoder.decode(codes)).logits64).toEqual(expected);
  }

  it('loads .npz files: stored, deflated + zip64 as np.savez writes them, and float16/float64 arrays', async () => {
    const extra = new Map<string, NpyInput>([
      ['encoder.0.weight', { shape: [2, 2], data: [1, 2, 3, 4] }],
      ['labels', { shape: [3], data: [1, 2, 3], dtype: '<i4' }], // not needed, so never parsed
    ]);
    await expectSameOutput(await saveNpz('stored.npz', new Map([...toNpy(tensors), ...extra])));
    await expectSameOutput(await saveNpz('zip64.npz', toNpy(tensors), { method: 'deflate', zip64: true }));
    await expectSameOutput(await saveNpz('f16.npz', toNpy(tensors, '<f2')));
    await expectSameOutput(await saveNpz('f64.npz', toNpy(tensors, '<f8'), { method: 'deflate' }));
  });

  it('loads GGUF files written with writeGGUF (F32 and F16) and made by segmentationDecoderGGUF', async () => {
    await expectSameOutput(await saveGGUF('f32.gguf', tensors, 'F32'));
    await expectSameOutput(await saveGGUF('f16.gguf', tensors, 'F16'));
    const converted = path.join(dir, 'converted.gguf');
    await writeGGUF(converted, segmentationDecoderGGUF(await readNpz(await saveNpz('src.npz', toNpy(tensors)))));
    await expectSameOutput(converted);
  });

  it('refuses files that are not a decoder, with errors that say what is wrong', async () => {
    await expect(SegmentationDecoder.load(path.join(dir, 'absent.npz'))).rejects.toMatchObject({ code: 'BAD_DECODER', message: expect.stringContaining('vae-oid.npz') });
    const text = path.join(dir, 'notes.txt');
    await writeFile(text, 'hello world');
    await expect(SegmentationDecoder.load(text)).rejects.toMatchObject({ code: 'BAD_DECODER', message: expect.stringContaining('not an .npz or GGUF') });
    await expect(SegmentationDecoder.load(await saveGGUF('gemma.gguf', tensors, 'F32', 'gemma'))).rejects.toMatchObject({
      code: 'BAD_DECODER',
      message: expect.stringContaining("'gemma'"),
    });

    const missing = toNpy(tensors);
    missing.delete('decoder.6.weight');
    await expect(SegmentationDecoder.load(await saveNpz('missing.npz', missing))).rejects.toMatchObject({
      code: 'BAD_DECODER',
      message: expect.stringContaining('decoder.6.weight is missing'),
    });
    const misshapen = toNpy(tensors);
    const w = misshapen.get('decoder.2.net.2.weight')!;
    misshapen.set('decoder.2.net.2.weight', { ...w, shape: [SMALL.width, SMALL.width, 1, 9] });
    await expect(SegmentationDecoder.load(await saveNpz('misshapen.npz', misshapen))).rejects.toMatchObject({
      code: 'BAD_DECODER',
      message: expect.stringMatching(/decoder\.2\.net\.2\.weight has shape \[8, 8, 1, 9\], expected \[8, 8, 3, 3\]/),
    });
    const chain = toNpy(tensors);
    const up = chain.get('decoder.8.weight')!;
    chain.set('decoder.8.weight', { ...up, shape: [4, 5, 4, 4], data: Array.from(up.data).slice(0, 4 * 5 * 16) });
    await expect(SegmentationDecoder.load(await saveNpz('chain.npz', chain))).rejects.toMatchObject({ code: 'BAD_DECODER', message: expect.stringContaining('expected [5, out, 4, 4]') });

    const good = await saveNpz('good.npz', toNpy(tensors));
    const bytes = npzBytes(toNpy(tensors));
    await writeFile(good, bytes.subarray(0, bytes.length - 30)); // truncated
    await expect(SegmentationDecoder.load(good)).rejects.toBeInstanceOf(NpzError);
    const gguf = await saveGGUF('cut.gguf', tensors, 'F32');
    await writeFile(gguf, (await import('node:fs')).readFileSync(gguf).subarray(0, 200));
    await expect(SegmentationDecoder.load(gguf)).rejects.toBeInstanceOf(GGUFError);
  });

  it('lists the tensors it needs (the GGUF form uses the same names)', () => {
    expect(segmentationTensorNames()).toEqual([...tensors.keys()]);
    expect(() => segmentationDecoderGGUF(new Map())).toThrow(TaskError);
    const short = new Map(tensors);
    short.set('decoder.0.bias', { shape: [SMALL.width], data: new Float32Array(SMALL.width - 1) });
    expect(() => SegmentationDecoder.fromTensors(short)).toThrow(/decoder\.0\.bias has 7 values for shape \[8\]/);
  });
});

describe('maskForBox', () => {
  /** 64×64 logits from a function of (row, column). */
  const logits = (f: (r: number, c: number) => number) => Float32Array.from({ length: MASK_SIZE * MASK_SIZE }, (_, i) => f(Math.floor(i / MASK_SIZE), i % MASK_SIZE));
  /** The set pixels of a mask as [x0, y0, x1, y1) bounds, or null if empty. */
  function extent(mask: Uint8Array, width: number): [number, number, number, number] | null {
    let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
    mask.forEach((v, i) => {
      if (!v) return;
      const x = i % width, y = Math.floor(i / width);
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + 1); y1 = Math.max(y1, y + 1);
    });
    return x1 < 0 ? null : [x0, y0, x1, y1];
  }
  const count = (mask: Uint8Array) => mask.reduce((a, v) => a + v, 0);

  it('fills exactly the floored box for all-positive logits, on a non-square image', () => {
    const mask = maskForBox(logits(() => 0.5), { x0: 10.7, y0: 5.2, x1: 30.9, y1: 12 }, 50, 20);
    expect(mask).toHaveLength(50 * 20);
    expect(extent(mask, 50)).toEqual([10, 5, 30, 12]);
    expect(count(mask)).toBe(20 * 7);
    expect(count(maskForBox(logits(() => -0.1), { x0: 0, y0: 0, x1: 50, y1: 20 }, 50, 20))).toBe(0);
  });

  it('puts the boundary where the logits change sign, when enlarging and when shrinking', () => {
    // +1 in columns 0..31, −1 in 32..63: the interpolated edge is at 32/64 of the box.
    const half = logits((_, c) => (c < 32 ? 1 : -1));
    // Enlarging 64 → 100: output column i samples input (i + 0.5)·0.64 − 0.5 (pixel-centre convention);
    // the value is positive while that is < 31.5, i.e. i ≤ 49.
    expect(extent(maskForBox(half, { x0: 0, y0: 0, x1: 100, y1: 40 }, 100, 40), 100)).toEqual([0, 0, 50, 40]);
    // Shrinking 64 → 16: the triangle widens to ±4 input pixels around (i + 0.5)·4; it is symmetric, so
    // the sign is that of the centre's side: columns 0..7 inside.
    expect(extent(maskForBox(half, { x0: 0, y0: 0, x1: 16, y1: 16 }, 16, 16), 16)).toEqual([0, 0, 8, 16]);
    // The top-left quadrant of the logits lands in the top-left quadrant of the box.
    const quadrant = logits((r, c) => (r < 32 && c < 32 ? 2 : -2));
    const m = maskForBox(quadrant, { x0: 100, y0: 40, x1: 300, y1: 240 }, 400, 300);
    expect(extent(m, 400)).toEqual([100, 40, 200, 140]);
    // Bilinear rounds the inner corner: box pixel (99, 99) samples 0.34 of the way into the negative side
    // on both axes, 0.66·(0.66·2 − 0.34·2) − 0.34·2 < 0; its neighbours (98, 99) and (99, 98) stay positive.
    expect(count(m)).toBe(100 * 100 - 1);
    expect(m[(40 + 99) * 400 + 100 + 99]).toBe(0);
  });

  it('clamps boxes to the image and returns an empty mask for empty boxes', () => {
    const full = logits(() => 1);
    expect(extent(maskForBox(full, { x0: -20, y0: -5, x1: 500, y1: 7.5 }, 64, 32), 64)).toEqual([0, 0, 64, 7]);
    expect(count(maskForBox(full, { x0: 10, y0: 10, x1: 10.9, y1: 40 }, 64, 64))).toBe(0);
    expect(count(maskForBox(full, { x0: 70, y0: 0, x1: 90, y1: 10 }, 64, 64))).toBe(0);
    // Swapped corners are ordered.
    expect(extent(maskForBox(full, { x0: 20, y0: 30, x1: 10, y1: 5 }, 64, 64), 64)).toEqual([10, 5, 20, 30]);
  });

  it('rejects bad arguments with typed errors', () => {
    const full = logits(() => 1);
    const bad = [
      () => maskForBox(new Float32Array(10), { x0: 0, y0: 0, x1: 1, y1: 1 }, 4, 4),
      () => maskForBox(full, { x0: 0, y0: 0, x1: NaN, y1: 1 }, 4, 4),
      () => maskForBox(full, undefined as unknown as { x0: number; y0: number; x1: number; y1: number }, 4, 4),
      () => maskForBox(full, { x0: 0, y0: 0, x1: 1, y1: 1 }, 4.5, 4),
      () => maskForBox(full, { x0: 0, y0: 0, x1: 1, y1: 1 }, 0, 4),
      () => maskForBox(full, { x0: 0, y0: 0, x1: 1, y1: 1 }, 2 ** 20, 2 ** 20),
    ];
    for (const f of bad) expect(f).toThrow(expect.objectContaining({ name: 'TaskError', code: 'BAD_OPTION' }));
  });
});

describe('decodeSegmentation', () => {
  it('parses, decodes and places every object, and reports the skipped ones', async () => {
    const tensors = randomVae(SMALL, 4);
    const decoder = SegmentationDecoder.fromTensors(tensors);
    const codesA = Array.from({ length: 16 }, (_, i) => i % 10);
    const codesB = Array.from({ length: 16 }, (_, i) => 9 - (i % 10));
    const tokens = (locs: number[], codes: number[]) =>
      locs.map((v) => `<loc${String(v).padStart(4, '0')}>`).join('') + codes.map((c) => `<seg${String(c).padStart(3, '0')}>`).join('');
    const text = `${tokens([0, 0, 512, 256], codesA)} cat ; ${tokens([512, 512, 1023, 1023], codesB)} dog ; <loc0001> broken`;
    const size = { width: 200, height: 100 };
    const r = await decodeSegmentation(text, size, decoder);
    expect(r.skipped).toHaveLength(1);
    expect(r.segments.map((s) => [s.label, s.box])).toEqual([
      ['cat', { x0: 0, y0: 0, x1: 50, y1: 50 }],
      ['dog', { x0: 100, y0: 50, x1: (1023 / 1024) * 200, y1: (1023 / 1024) * 100 }],
    ]);
    for (const s of r.segments) {
      expect(s.mask).toHaveLength(200 * 100);
      const { logits64 } = await decoder.decode(s.codes);
      expect(s.mask).toEqual(maskForBox(logits64, s.box, 200, 100));
    }
    // The cat's mask never leaves its box.
    r.segments[0]!.mask.forEach((v, i) => {
      if (v) expect(i % 200 < 50 && Math.floor(i / 200) < 50).toBe(true);
    });
  });
});
