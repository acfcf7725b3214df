/**
 * Running quantized models against their dequantized twins, for tests: an F32 copy of a quantized GGUF
 * (every quantized tensor replaced by the reference dequantization of its blocks), native handles on
 * model files, teacher-forced logits, and the drift statistics reported against a golden run.
 */
import { readGGUF } from '../../lib/gguf/reader.js';
import { ggmlTypeById, isQuantizedType } from '../../lib/gguf/ggml-types.js';
import type { GGUFTensorInput } from '../../lib/gguf/types.js';
import { writeGGUF } from '../../lib/gguf/writer.js';
import { locateModelFiles } from '../../lib/model/files.js';
import { textSpec, visionSpec } from '../../lib/model/native-spec.js';
import { seededRandom } from '../../lib/model/sampling.js';
import { loadTestAddon, native, type NativeModel } from '../../lib/native.js';
import { paligemmaTextModelLayout, TOKEN_TYPE, tensorBytes, type TextShape } from './gguf-fixtures.js';

/**
 * Writes a text GGUF of the published layout with other dimensions, F32 weights N(0, 0.05²) (norm
 * scales 1) and a vocabulary of placeholder pieces.
 */
export async function writeRandomTextModel(file: string, shape: Partial<TextShape> & { vocabSize: number }, seed: number): Promise<void> {
  const tokens = Array.from({ length: shape.vocabSize }, (_, i) => ['<pad>', '<eos>', '<bos>', '<unk>'][i] ?? `t${i}`);
  const vocab = { tokens, scores: new Float32Array(tokens.length), tokenTypes: new Int32Array(tokens.length).fill(TOKEN_TYPE.normal) };
  const layout = paligemmaTextModelLayout({ vocab, shape });
  const random = seededRandom(seed);
  const tensors = layout.tensors.map((t): GGUFTensorInput => {
    const n = t.dims.reduce((a, b) => a * b, 1);
    const norm = t.name.endsWith('norm.weight');
    const values = Float32Array.from({ length: n }, () => (norm ? 1 : 0.05 * (random() + random() + random() - 1.5) * 2));
    return { name: t.name, type: 'F32', dims: t.dims, data: new Uint8Array(values.buffer) };
  });
  await writeGGUF(file, { metadata: layout.metadata, tensors });
}

/** Writes `output`: `input` with each quantized tensor stored as the F32 values of its blocks. */
export async function dequantizedCopy(input: string, output: string): Promise<void> {
  const gguf = await readGGUF(input);
  const addon = loadTestAddon();
  const tensors: GGUFTensorInput[] = gguf.tensors.map((t) => {
    const type = ggmlTypeById(t.typeId)!;
    if (!isQuantizedType(type)) return { name: t.name, type: t.type, dims: t.dims, data: () => tensorBytes(gguf, t.name) };
    const k = t.dims[0]!;
    return {
      name: t.name, type: 'F32', dims: t.dims,
      data: () => new Uint8Array(addon.dequantizeRows(t.typeId, tensorBytes(gguf, t.name), t.elements / k, k).buffer),
    };
  });
  await writeGGUF(output, { metadata: gguf.metadata, tensors });
}

/** A native handle on a text model (and projector), as loadModel would make it. */
export async function openNative(model: string, projector?: string, simd?: string): Promise<NativeModel> {
  const files = await locateModelFiles({ model, projector, requireProjector: projector !== undefined });
  return new native.NativeModel({
    text: textSpec(files.text), vision: files.projector ? visionSpec(files.projector) : undefined, simd,
  });
}

/**
 * Logits after a prefill of `ids` (after the image rows, when `features` is given) and after each of
 * `steps` decode steps that feed `next(step, logits)`: steps + 1 rows of vocab logits.
 */
export async function forcedLogits(
  model: NativeModel, features: Float32Array | null, ids: Int32Array, steps: number, next: (step: number, logits: Float32Array) => number,
): Promise<Float32Array[]> {
  const out = [(await model.prefill(0, features, ids)).logits];
  for (let s = 0; s < steps; s++) out.push(await model.decode(Int32Array.of(0), Int32Array.of(next(s, out[s]!))));
  return out;
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

/** Top-1 minus top-2. */
export function margin(v: ArrayLike<number>): number {
  const top = argmax(v);
  let second = -Infinity;
  for (let i = 0; i < v.length; i++) if (i !== top && v[i]! > second) second = v[i]!;
  return v[top]! - second;
}

function logSoftmax(v: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < v.length; i++) max = Math.max(max, v[i]!);
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += Math.exp(v[i]! - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(v, (x) => x - lse);
}

/** KL(p ‖ q) of the softmaxes of logits p and q (nats). */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  const lp = logSoftmax(p), lq = logSoftmax(q);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) kl += Math.exp(lp[i]!) * (lp[i]! - lq[i]!);
  return kl;
}
