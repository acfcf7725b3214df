/**
 * The mask decoder of PaliGemma's segmentation output: 16 `<segNNN>` codes → 64×64 mask logits → a
 * binary mask of the original image size. It is the decoder half of big_vision's VQ-VAE for masks
 * (weights `vae-oid.npz`; big_vision/evaluators/proj/paligemma/transfers/segmentation.py holds the Flax
 * reference, big_vision/pp/proj/paligemma/segmentation.py the matching encoder):
 *
 *   codes[16] → codebook rows (`_vq_vae._embedding`, [128, D]) laid out as a 4×4 grid, row-major
 *   Conv 1×1 → 128 (decoder.0), ReLU
 *   2 × ResBlock (decoder.2.net, decoder.3.net): x + Conv1×1(ReLU(Conv3×3(ReLU(Conv3×3(x))))), no ReLU after the sum
 *   4 × ConvTranspose 4×4 stride 2 → 128, 64, 32, 16 channels (decoder.4, .6, .8, .10), each + ReLU: 4 → 64 pixels
 *   Conv 1×1 → 1 (decoder.12): 64×64 values, > 0 inside the mask (trained towards ±1)
 *
 * The .npz holds PyTorch tensors: Conv weights [out, in, kh, kw], ConvTranspose weights [in, out, kh, kw];
 * the Flax reference only transposes them to HWIO. Padding, which differs between the two frameworks:
 * - Conv 3×3 uses explicit `padding=1` in Flax: one zero row/column on each side, as PyTorch's padding=1.
 * - ConvTranspose uses Flax `padding=2, transpose_kernel=True`. An explicit Flax/lax padding is applied to
 *   the stride-dilated input (zeros between input pixels) before a stride-1 correlation with the kernel,
 *   and transpose_kernel flips the kernel spatially and swaps in/out channels. That equals PyTorch's
 *   ConvTranspose2d(kernel 4, stride 2, padding = kernel − 1 − 2 = 1) applied to the PyTorch weight:
 *   y[2i − 1 + k] += x[i] · w[k] per axis, output 2n. (Flax's *string* 'SAME' would give different offsets;
 *   the reference does not use it.)
 */
import type { FileHandle } from 'node:fs/promises';
import { openRegularFile, type FileErrorFactory } from '../files.js';

import { GGUFError, readGGUF, type GGUFWriteInput, type GGUFTensorInfo } from '../gguf/index.js';
import { f16BitsToF32 } from '../convert/dtype.js';
import type { SimdVariantName } from '../native.js';
import { conv2d, convTranspose2d, relu, transposeConvTWeight, type ConvTransposeWeights, type ConvWeights, type FeatureMap } from './conv.js';
import { TaskError } from './errors.js';
import { ggufFileError } from '../gguf/errors.js';
import { readNpz, type NpyArray } from './npz.js';
import { parseSegmentation, SEG_TOKENS, type Box, type ImageSize, type SegmentedObject, type SkippedObject } from './parse.js';

/** Side of the decoded mask: 4 × 2⁴. */
export const MASK_SIZE = 64;
/** The codes form a GRID × GRID map. */
const GRID = 4;
/** `general.architecture` of a GGUF holding the decoder (see docs/FORMAT.md, "Segmentation decoder"). */
export const SEGMENTATION_GGUF_ARCH = 'paligemma_mask_decoder';

/** Tensor names, identical in vae-oid.npz (member names without `.npy`) and in the GGUF form. */
export const SEGMENTATION_TENSORS = {
  codebook: '_vq_vae._embedding',
  input: 'decoder.0',
  resBlocks: ['decoder.2.net', 'decoder.3.net'],
  /** The three convolutions inside each residual block (PyTorch Sequential indices; odd ones are ReLUs). */
  resConvs: ['0', '2', '4'],
  upsample: ['decoder.4', 'decoder.6', 'decoder.8', 'decoder.10'],
  output: 'decoder.12',
} as const;

/** Every tensor the decoder needs, `.weight` and `.bias` of each layer after the codebook. */
export function segmentationTensorNames(): string[] {
  const t = SEGMENTATION_TENSORS;
  const layers = [
    t.input,
    ...t.resBlocks.flatMap((b) => t.resConvs.map((c) => `${b}.${c}`)),
    ...t.upsample,
    t.output,
  ];
  return [t.codebook, ...layers.flatMap((l) => [`${l}.weight`, `${l}.bias`])];
}

/** Options of {@link SegmentationDecoder.load}. */
export interface SegmentationDecoderOptions {
  /** Force a SIMD kernel set for the GEMMs (default: the process default). */
  simd?: SimdVariantName;
}

/** Output of {@link SegmentationDecoder.decode}. */
export interface DecodedMask {
  /** MASK_SIZE × MASK_SIZE decoder outputs, row-major; > 0 means inside the mask. */
  logits64: Float32Array;
}

/** The VQ-VAE mask decoder with its weights in memory (about 2 M parameters for vae-oid). */
export class SegmentationDecoder {
  readonly #codebook: Float32Array;
  readonly #input: ConvWeights;
  readonly #resBlocks: [ConvWeights, ConvWeights, ConvWeights][];
  readonly #upsample: ConvTransposeWeights[];
  readonly #output: ConvWeights;
  readonly #simd: SimdVariantName | undefined;
  /** Codebook entries (128 for vae-oid); codes must be below this. */
  readonly codebookSize: number;
  /** Length of a codebook entry (512 for vae-oid). */
  readonly embeddingDim: number;

  private constructor(tensors: Map<string, NpyArray>, source: string, options: SegmentationDecoderOptions) {
    const t = SEGMENTATION_TENSORS;
    const get = (name: string): NpyArray => {
      const a = tensors.get(name);
      if (!a) throw new TaskError('BAD_DECODER', `${source}: tensor ${name} is missing; is this vae-oid.npz from big_vision's PaliGemma assets?`);
      if (a.data.length !== a.shape.reduce((n, d) => n * d, 1))
        throw new TaskError('BAD_DECODER', `${source}: ${name} has ${a.data.length} values for shape [${a.shape.join(', ')}]`);
      return a;
    };
    const bad = (name: string, shape: number[], want: string): never => {
      throw new TaskError('BAD_DECODER', `${source}: ${name} has shape [${shape.join(', ')}], expected ${want}`);
    };
    const codebook = get(t.codebook);
    if (codebook.shape.length !== 2 || codebook.shape[0]! < 1 || codebook.shape[1]! < 1) bad(t.codebook, codebook.shape, '[codes, dim]');
    [this.codebookSize, this.embeddingDim] = codebook.shape as [number, number];
    this.#codebook = codebook.data;

    /** Weight [cout, cin, k, k] with cin and k fixed by the layer before; cout free unless given. */
    const conv = (layer: string, cin: number, kernel: number, cout?: number): ConvWeights => {
      const w = get(`${layer}.weight`);
      const b = get(`${layer}.bias`);
      const s = w.shape;
      if (s.length !== 4 || s[1] !== cin || s[2] !== kernel || s[3] !== kernel || s[0]! < 1 || (cout !== undefined && s[0] !== cout))
        bad(`${layer}.weight`, s, `[${cout ?? 'out'}, ${cin}, ${kernel}, ${kernel}]`);
      if (b.shape.length !== 1 || b.shape[0] !== s[0]) bad(`${layer}.bias`, b.shape, `[${s[0]}]`);
      return { weight: w.data, bias: b.data, cin, cout: s[0]!, kernel };
    };
    const convT = (layer: string, cin: number): ConvTransposeWeights => {
      const w = get(`${layer}.weight`);
      const b = get(`${layer}.bias`);
      const s = w.shape;
      if (s.length !== 4 || s[0] !== cin || s[1]! < 1 || s[2] !== 4 || s[3] !== 4) bad(`${layer}.weight`, s, `[${cin}, out, 4, 4]`);
      if (b.shape.length !== 1 || b.shape[0] !== s[1]) bad(`${layer}.bias`, b.shape, `[${s[1]}]`);
      const cout = s[1]!;
      return { weightT: transposeConvTWeight(w.data, cin, cout, 4), bias: b.data, cin, cout, kernel: 4, stride: 2, padding: 1 };
    };

    this.#input = conv(t.input, this.embeddingDim, 1);
    const width = this.#input.cout;
    this.#resBlocks = t.resBlocks.map((block) => {
      const [c0, c1, c2] = t.resConvs.map((c) => `${block}.${c}`) as [string, string, string];
      return [conv(c0, width, 3, width), conv(c1, width, 3, width), conv(c2, width, 1, width)] as [ConvWeights, ConvWeights, ConvWeights];
    });
    let channels = width;
    this.#upsample = t.upsample.map((layer) => {
      const c = convT(layer, channels);
      channels = c.cout;
      return c;
    });
    this.#output = conv(t.output, channels, 1, 1);
    this.#simd = options.simd;
  }

  /**
   * Loads the decoder from `vae-oid.npz` (big_vision's PaliGemma asset) or from a GGUF holding the same
   * tensors (docs/FORMAT.md, "Segmentation decoder"); the format is told by the first bytes.
   */
  static async load(path: string, options: SegmentationDecoderOptions = {}): Promise<SegmentationDecoder> {
    const magic = await readMagic(path);
    if (magic === 'GGUF') return new SegmentationDecoder(await ggufTensors(path), path, options);
    if (magic === 'PK\x03\x04') {
      const wanted = new Set(segmentationTensorNames());
      return new SegmentationDecoder(await readNpz(path, { select: (n) => wanted.has(n) }), path, options);
    }
    throw new TaskError('BAD_DECODER', `${path}: not an .npz or GGUF file; the segmentation decoder is vae-oid.npz from big_vision's PaliGemma assets`);
  }

  /** A decoder from tensors already in memory (NumPy shapes, PyTorch layouts, as in vae-oid.npz). */
  static fromTensors(tensors: Map<string, NpyArray>, options: SegmentationDecoderOptions = {}): SegmentationDecoder {
    return new SegmentationDecoder(tensors, 'segmentation decoder', options);
  }

  /** 16 codes (the `<segNNN>` values of one object, in output order) → 64×64 mask logits. */
  async decode(codes: ArrayLike<number>): Promise<DecodedMask> {
    if (codes?.length !== SEG_TOKENS)
      throw new TaskError('BAD_CODES', `a mask is ${SEG_TOKENS} codes, got ${codes?.length ?? typeof codes}`);
    const d = this.embeddingDim;
    const data = new Float32Array(SEG_TOKENS * d);
    for (let i = 0; i < SEG_TOKENS; i++) {
      const c = codes[i]!;
      if (!Number.isInteger(c) || c < 0 || c >= this.codebookSize)
        throw new TaskError('BAD_CODES', `code ${i} is ${c}; codes are integers in 0..${this.codebookSize - 1}`);
      data.set(this.#codebook.subarray(c * d, (c + 1) * d), i * d); // code i sits at row i / 4, column i % 4
    }
    const simd = this.#simd;
    let x: FeatureMap = relu(await conv2d({ data, height: GRID, width: GRID, channels: d }, this.#input, simd));
    for (const [a, b, c] of this.#resBlocks) {
      const y = await conv2d(relu(await conv2d(relu(await conv2d(x, a, simd)), b, simd)), c, simd);
      for (let i = 0; i < y.data.length; i++) y.data[i] += x.data[i]!;
      x = y;
    }
    for (const up of this.#upsample) x = relu(await convTranspose2d(x, up, simd));
    x = await conv2d(x, this.#output, simd);
    if (x.height !== MASK_SIZE || x.width !== MASK_SIZE) throw new Error(`internal: decoded ${x.height}×${x.width}`);
    return { logits64: x.data };
  }
}

/** A segmented object with its mask. */
export interface SegmentMask extends SegmentedObject {
  /** width × height bytes, row-major: 1 inside the object, 0 elsewhere (always 0 outside the box). */
  mask: Uint8Array;
}

/** What {@link decodeSegmentation} returns. */
export interface SegmentationResult {
  segments: SegmentMask[];
  skipped: SkippedObject[];
}

/**
 * Everything after generation for a `segment` prompt: parses the text, decodes each object's codes and
 * places its mask. `size` is the original image's size in whole pixels.
 */
export async function decodeSegmentation(text: string, size: ImageSize, decoder: SegmentationDecoder): Promise<SegmentationResult> {
  const { segments, skipped } = parseSegmentation(text, size);
  const out: SegmentMask[] = [];
  for (const s of segments) {
    const { logits64 } = await decoder.decode(s.codes);
    out.push({ ...s, mask: maskForBox(logits64, s.box, size.width, size.height) });
  }
  return { segments: out, skipped };
}

/** Bigger masks than this are refused (a mask is one byte per pixel). */
const MAX_MASK_PIXELS = 2 ** 30;

/**
 * Places 64×64 mask logits into `box` of a width × height image, the way big_vision's segmentation
 * evaluator does: the box is cut to whole pixels by flooring its edges, the logits are resized to the
 * box with PIL's BILINEAR filter (a triangle filter, widened when shrinking), then thresholded at 0
 * (sigmoid 0.5). Resizing the logits rather than a thresholded mask gives smooth edges when enlarging.
 * Pixels outside the box are 0.
 */
export function maskForBox(logits64: Float32Array, box: Box, width: number, height: number): Uint8Array {
  if (!(logits64 instanceof Float32Array) || logits64.length !== MASK_SIZE * MASK_SIZE)
    throw new TaskError('BAD_OPTION', `logits64 must be a Float32Array of ${MASK_SIZE} × ${MASK_SIZE} values`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width * height > MAX_MASK_PIXELS)
    throw new TaskError('BAD_OPTION', `width and height must be positive integers with at most ${MAX_MASK_PIXELS} pixels, got ${width} × ${height}`);
  const { x0, y0, x1, y1 } = box ?? {};
  if (![x0, y0, x1, y1].every((v) => typeof v === 'number' && Number.isFinite(v)))
    throw new TaskError('BAD_OPTION', `box must have finite x0, y0, x1, y1, got ${JSON.stringify(box)}`);
  const edge = (v: number, size: number) => Math.min(size, Math.max(0, Math.floor(v)));
  const left = edge(Math.min(x0!, x1!), width);
  const right = edge(Math.max(x0!, x1!), width);
  const top = edge(Math.min(y0!, y1!), height);
  const bottom = edge(Math.max(y0!, y1!), height);
  const mask = new Uint8Array(width * height);
  const bw = right - left;
  const bh = bottom - top;
  if (bw === 0 || bh === 0) return mask;

  const wx = triangleFilter(MASK_SIZE, bw);
  const wy = triangleFilter(MASK_SIZE, bh);
  // Horizontal pass first, as PIL does: [64 rows, bw].
  const rows = new Float64Array(MASK_SIZE * bw);
  for (let r = 0; r < MASK_SIZE; r++) {
    for (let i = 0; i < bw; i++) {
      let acc = 0;
      const { start, weights } = wx[i]!;
      for (let j = 0; j < weights.length; j++) acc += weights[j]! * logits64[r * MASK_SIZE + start + j]!;
      rows[r * bw + i] = acc;
    }
  }
  for (let o = 0; o < bh; o++) {
    const { start, weights } = wy[o]!;
    const line = (top + o) * width + left;
    for (let i = 0; i < bw; i++) {
      let acc = 0;
      for (let j = 0; j < weights.length; j++) acc += weights[j]! * rows[(start + j) * bw + i]!;
      mask[line + i] = acc > 0 ? 1 : 0;
    }
  }
  return mask;
}

/**
 * PIL's BILINEAR resampling weights from `inSize` to `outSize` samples (Resample.c, precompute_coeffs):
 * output i is centred at (i + 0.5) · scale in input coordinates; the triangle 1 − |t| is stretched by
 * max(scale, 1); the window is cut to the input and the weights renormalised.
 */
function triangleFilter(inSize: number, outSize: number): { start: number; weights: Float64Array }[] {
  const scale = inSize / outSize;
  const stretch = Math.max(scale, 1);
  return Array.from({ length: outSize }, (_, i) => {
    const center = (i + 0.5) * scale;
    const start = Math.max(0, Math.trunc(center - stretch + 0.5));
    const end = Math.min(inSize, Math.trunc(center + stretch + 0.5));
    const weights = new Float64Array(Math.max(0, end - start));
    let sum = 0;
    for (let j = 0; j < weights.length; j++) {
      weights[j] = Math.max(0, 1 - Math.abs((start + j + 0.5 - center) / stretch));
      sum += weights[j]!;
    }
    if (sum > 0) for (let j = 0; j < weights.length; j++) weights[j] /= sum;
    return { start, weights };
  });
}

/** The first four bytes of a file, as Latin-1 text. */
async function readMagic(path: string): Promise<string> {
  const fail: FileErrorFactory = (_problem, message, file, cause) =>
    new TaskError('BAD_DECODER', `cannot read the segmentation decoder ${file}: ${message}; get vae-oid.npz from big_vision's PaliGemma assets`, { cause });
  const { handle } = await openRegularFile(path, 'an .npz or GGUF file', fail);
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await handle.read(b, 0, 4, 0);
    return b.subarray(0, bytesRead).toString('latin1');
  } catch (cause) {
    throw fail('IO', (cause as Error).message, path, cause);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The decoder tensors of a GGUF file as NumPy-shaped float32 arrays (GGUF dims are reversed). */
async function ggufTensors(path: string): Promise<Map<string, NpyArray>> {
  const file = await readGGUF(path);
  const arch = file.metadata.get('general.architecture');
  if (arch?.type !== 'string' || arch.value !== SEGMENTATION_GGUF_ARCH)
    throw new TaskError(
      'BAD_DECODER',
      `${path}: general.architecture is ${arch?.type === 'string' ? `'${arch.value}'` : 'missing'}, not '${SEGMENTATION_GGUF_ARCH}'; ` +
        'this is not a segmentation decoder (convert vae-oid.npz with `paligemma convert`, or pass the .npz)',
    );
  const tensors = new Map<string, NpyArray>();
  const { handle: fh } = await openRegularFile(path, 'a GGUF file', ggufFileError);
  try {
    for (const name of segmentationTensorNames()) {
      const info = file.tensorsByName.get(name);
      if (info) tensors.set(name, { shape: [...info.dims].reverse(), data: await tensorData(fh, info, path) });
    }
  } finally {
    await fh.close();
  }
  return tensors;
}

async function tensorData(fh: FileHandle, info: GGUFTensorInfo, path: string): Promise<Float32Array> {
  if (info.type !== 'F32' && info.type !== 'F16')
    throw new TaskError('BAD_DECODER', `${path}: tensor ${info.name} is ${info.type}; the segmentation decoder must be F32 or F16`);
  const bytes = Buffer.alloc(info.size);
  const { bytesRead } = await fh.read(bytes, 0, info.size, info.offset);
  if (bytesRead !== info.size) throw new GGUFError('TENSOR_OUT_OF_BOUNDS', `tensor ${info.name} is cut short`, path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(info.elements);
  for (let i = 0; i < out.length; i++)
    out[i] = info.type === 'F32' ? view.getFloat32(4 * i, true) : f16BitsToF32(view.getUint16(2 * i, true));
  return out;
}

/**
 * The GGUF form of the decoder (F32 tensors with the .npz names and shapes), for `paligemma convert`:
 * `writeGGUF(out, segmentationDecoderGGUF(await readNpz('vae-oid.npz')))`. Checks the tensors first.
 */
export function segmentationDecoderGGUF(tensors: Map<string, NpyArray>): GGUFWriteInput {
  SegmentationDecoder.fromTensors(tensors); // throws BAD_DECODER if anything is missing or misshapen
  return {
    metadata: {
      'general.architecture': { type: 'string', value: SEGMENTATION_GGUF_ARCH },
      'general.name': { type: 'string', value: 'PaliGemma VQ-VAE mask decoder (big_vision vae-oid)' },
    },
    tensors: segmentationTensorNames().map((name) => {
      const a = tensors.get(name)!;
      return { name, type: 'F32' as const, dims: [...a.shape].reverse(), data: a.data };
    }),
  };
}
