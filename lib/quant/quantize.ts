/**
 * `quantizeModel`: an F32/F16/BF16 PaliGemma GGUF (text model or projector) → a quantized GGUF that
 * llama.cpp loads. Tensors stream from the input file through the native quantizer to the writer, so
 * memory stays at a few 4 MiB chunks whatever the model's size.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

import { convertElements } from '../convert/dtype.js';
import { writeAtomically } from '../convert/convert.js';
import { GGUFError } from '../gguf/errors.js';
import { GGML_QUANTIZATION_VERSION } from '../gguf/ggml-types.js';
import { getOptionalString } from '../gguf/metadata.js';
import { readGGUF } from '../gguf/reader.js';
import type { GGMLTypeName, GGUFFile, GGUFTensorInfo, GGUFTensorInput, GGUFValue } from '../gguf/types.js';
import { writeGGUF } from '../gguf/writer.js';
import { QuantizeError } from './errors.js';
import { isQuantizedName, MIX_FILE_TYPE, planProjector, planTextModel, PROJECTOR_FILE_TYPE, QUANT_MIXES } from './plan.js';
import type { QuantMix } from './plan.js';
import { quantizeRowStream } from './rows.js';
import type { SourceFloatType } from './rows.js';

/** Progress of `quantizeModel`, in bytes of the input's tensor data. */
export interface QuantizeProgress {
  bytesDone: number;
  bytesTotal: number;
  /** The tensor being read. */
  tensor: string;
}

/** Options of `quantizeModel`. */
export interface QuantizeOptions {
  /** The mix: `q8_0`, `q4_0`, `q4_k_m` (llama.cpp's Q4_K_M) or `q6_k`. A projector gets Q8_0 for any mix. */
  type: QuantMix;
  onProgress?: (progress: QuantizeProgress) => void;
  /** Aborting stops the work and removes the partial output; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Chunks quantized at once (default: the number of CPUs, at most 4). */
  concurrency?: number;
}

/** One tensor of the output and the type it had in the input. */
export interface QuantizedTensor {
  name: string;
  from: GGMLTypeName;
  to: GGMLTypeName;
}

/** What `quantizeModel` wrote. */
export interface QuantizeResult {
  path: string;
  /** `text` for a `gemma` model, `projector` for a `clip` projector. */
  kind: 'text' | 'projector';
  type: QuantMix;
  tensors: QuantizedTensor[];
  bytesIn: number;
  bytesOut: number;
}

const SOURCE_TYPES: readonly GGMLTypeName[] = ['F32', 'F16', 'BF16'];
/** Input bytes per read. */
const READ_BYTES = 4 * 2 ** 20;

/** The byte range [offset, offset + size) of `fh`, in chunks, each a fresh (aligned) buffer. */
async function* readRange(fh: FileHandle, offset: number, size: number, file: string, onBytes: (n: number) => void, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  for (let done = 0; done < size; ) {
    signal?.throwIfAborted();
    const chunk = new Uint8Array(Math.min(READ_BYTES, size - done));
    for (let at = 0; at < chunk.length; ) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(chunk, at, chunk.length - at, offset + done + at));
      } catch (err) {
        throw new QuantizeError('IO', `read failed: ${(err as Error).message}`, file);
      }
      if (bytesRead === 0) throw new QuantizeError('IO', 'the file ended inside tensor data (was it changed while reading?)', file);
      at += bytesRead;
    }
    done += chunk.length;
    onBytes(chunk.length);
    yield chunk;
  }
}

async function* convertStream(chunks: AsyncIterable<Uint8Array>, from: SourceFloatType, to: 'F32' | 'F16' | 'BF16'): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) yield convertElements(chunk, from, to);
}

/** The plan for `gguf`, or why it cannot be quantized. */
function planFor(gguf: GGUFFile, mix: QuantMix): { kind: QuantizeResult['kind']; types: GGMLTypeName[]; fileType: number } {
  const arch = getOptionalString(gguf, 'general.architecture');
  if (arch === 'gemma') return { kind: 'text', types: planTextModel(gguf.tensors, mix), fileType: MIX_FILE_TYPE[mix] };
  if (arch === 'clip') return { kind: 'projector', types: planProjector(gguf.tensors), fileType: PROJECTOR_FILE_TYPE };
  throw new QuantizeError('UNSUPPORTED_MODEL', `general.architecture is ${arch === undefined ? 'missing' : `'${arch}'`}; expected a PaliGemma text model ('gemma') or projector ('clip')`, gguf.path);
}

/** Refuses an output path that is the input file itself (it is read while the output is written). */
async function checkDistinct(input: string, output: string): Promise<void> {
  const [a, b] = await Promise.all([stat(input), stat(output).catch(() => undefined)]);
  if (path.resolve(input) === path.resolve(output) || (b && a.dev === b.dev && a.ino === b.ino)) {
    throw new QuantizeError('BAD_OPTION', 'the output path is the input file; write to another file', output);
  }
}

/**
 * Quantizes the PaliGemma GGUF at `input` (text model or projector, F32/F16/BF16 weights) into `output`
 * with llama.cpp's reference quantizers and its tensor-type choices for the mix (see planTextModel and
 * planProjector); the metadata is kept, with `general.file_type` and `general.quantization_version` set
 * as llama.cpp sets them. The output is written to `<output>.partial` and renamed when complete.
 * Throws QuantizeError (naming the tensor and row for NaN/±inf weights) or GGUFError.
 */
export async function quantizeModel(input: string, output: string, options: QuantizeOptions): Promise<QuantizeResult> {
  const mix = options?.type;
  if (!QUANT_MIXES.includes(mix)) throw new QuantizeError('BAD_OPTION', `type must be one of ${QUANT_MIXES.join(', ')}, not ${JSON.stringify(mix)}`);
  options.signal?.throwIfAborted();
  const gguf = await readGGUF(input);
  await checkDistinct(input, output);
  const plan = planFor(gguf, mix);

  const tensors: QuantizedTensor[] = gguf.tensors.map((t, i) => ({ name: t.name, from: t.type, to: plan.types[i]! }));
  for (const t of tensors) {
    if (t.to !== t.from && !SOURCE_TYPES.includes(t.from)) {
      throw new QuantizeError('UNSUPPORTED_TENSOR_TYPE', `tensor '${t.name}' is ${t.from} already; quantize from the F16, BF16 or F32 file`, input);
    }
  }

  const metadata = new Map<string, GGUFValue>(gguf.metadata);
  metadata.set('general.file_type', { type: 'u32', value: plan.fileType });
  metadata.set('general.quantization_version', { type: 'u32', value: GGML_QUANTIZATION_VERSION });

  const bytesTotal = gguf.tensors.reduce((sum, t) => sum + t.size, 0);
  let bytesDone = 0;
  let fh: FileHandle;
  try {
    fh = await open(input, 'r');
  } catch (err) {
    throw new GGUFError('IO', `cannot open: ${(err as Error).message}`, input);
  }
  const data = (t: GGUFTensorInfo, to: GGMLTypeName) => (): AsyncIterable<Uint8Array> => {
    const source = readRange(fh, t.offset, t.size, input, (n) => {
      bytesDone += n;
      options.onProgress?.({ bytesDone, bytesTotal, tensor: t.name });
    }, options.signal);
    if (to === t.type) return source;
    const from = t.type as SourceFloatType;
    if (!isQuantizedName(to)) return convertStream(source, from, to as SourceFloatType);
    return quantizeRowStream(source, { name: t.name, from, to, rowLength: t.dims[0]!, path: input, signal: options.signal, concurrency: options.concurrency });
  };
  const outTensors: GGUFTensorInput[] = gguf.tensors.map((t, i) => ({ name: t.name, type: tensors[i]!.to, dims: t.dims, data: data(t, tensors[i]!.to) }));
  try {
    await writeAtomically(output, (tmp) => writeGGUF(tmp, { metadata, tensors: outTensors }));
  } finally {
    await fh.close().catch(() => undefined);
  }
  return { path: output, kind: plan.kind, type: mix, tensors, bytesIn: gguf.fileSize, bytesOut: (await stat(output)).size };
}
