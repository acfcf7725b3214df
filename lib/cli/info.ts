/**
 * `paligemma info <file.gguf…>`: what a GGUF file is, whether this package can use it (and why not),
 * its hyperparameters, metadata and tensor table. Reads headers only (plus the ~8 MB of the mask
 * decoder's weights, which its validation needs). Exit status 0 means every file is usable.
 */
import type { Command } from './command.js';
import { parseArgs, UsageError, type OptionSpecs } from './args.js';
import { EXIT, reportError } from './errors.js';
import { formatBytes } from './progress.js';
import { checkFileArgument } from './files.js';
import { readGGUF } from '../gguf/reader.js';
import type { GGUFArrayValue, GGUFFile, GGUFValue } from '../gguf/types.js';
import { describeProjector, describeTextModel } from '../model/files.js';
import { Tokenizer } from '../tokenizer/index.js';

/** What a file is, as far as this package is concerned. */
export type FileKind = 'text-model' | 'projector' | 'segmentation-decoder' | 'other';

const KIND_NAMES: Record<FileKind, string> = {
  'text-model': 'PaliGemma text model (Gemma)',
  projector: 'PaliGemma projector (SigLIP vision tower + linear projector, "mmproj")',
  'segmentation-decoder': 'PaliGemma segmentation mask decoder (VQ-VAE)',
  other: 'not a PaliGemma file',
};

/** The summary `info` prints (and `--json` emits, one object per file). */
export interface FileInfo {
  path: string;
  kind: FileKind;
  architecture?: string;
  name?: string;
  /** Whether `paligemma` can use the file as what it is. */
  valid: boolean;
  /** Why not, when not valid. */
  error?: { name: string; code?: string; message: string };
  version: number;
  fileSize: number;
  alignment: number;
  dataOffset: number;
  /** Key hyperparameters, named as in the library (validated ones only). */
  hyperparameters?: Record<string, number | string | number[]>;
  tokenizer?: { model?: string; tokens: number; bos?: number; eos?: number };
  /** Every metadata key; arrays longer than 16 items are summarised as `{ itemType, length }`. */
  metadata: Record<string, unknown>;
  tensors: { name: string; type: string; dims: number[]; elements: number; size: number; offset: number }[];
  totals: { tensors: number; elements: number; bytes: number; byType: Record<string, { tensors: number; bytes: number }> };
}

const SHORT_ARRAY = 16;

/** The shortest decimal that reads back as the same float32 (1e-6, not 9.999999974752427e-7). */
export function shortestF32(x: number): number {
  if (!Number.isFinite(x)) return x;
  for (let p = 1; p < 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === Math.fround(x)) return y;
  }
  return x;
}

function summariseArray(v: GGUFArrayValue): unknown {
  if (v.value.length > SHORT_ARRAY) return { itemType: v.itemType, length: v.value.length };
  if (v.itemType === 'array') return (v.value as GGUFArrayValue[]).map(summariseArray);
  if (v.itemType === 'f32') return Array.from(v.value, shortestF32);
  return Array.from(v.value as ArrayLike<unknown>, (x) => (typeof x === 'bigint' ? x.toString() : x));
}

/** A metadata value as JSON: 64-bit integers as strings, long arrays summarised. */
function jsonValue(v: GGUFValue): unknown {
  if (v.type === 'array') return summariseArray(v);
  if (v.type === 'f32') return shortestF32(v.value);
  return typeof v.value === 'bigint' ? v.value.toString() : v.value;
}

function errorInfo(err: unknown): FileInfo['error'] {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, code: (e as { code?: string }).code, message: e.message };
}

/** Reads and validates one file; throws GGUFError only when it is not a readable GGUF at all. */
export async function inspectGGUF(file: string): Promise<FileInfo> {
  const gguf = await readGGUF(file);
  const str = (key: string) => {
    const v = gguf.metadata.get(key);
    return v?.type === 'string' ? v.value : undefined;
  };
  const architecture = str('general.architecture');
  const info: FileInfo = {
    path: file,
    kind: 'other',
    architecture,
    name: str('general.name'),
    valid: false,
    version: gguf.version,
    fileSize: gguf.fileSize,
    alignment: gguf.alignment,
    dataOffset: gguf.dataOffset,
    metadata: Object.fromEntries([...gguf.metadata].map(([k, v]) => [k, jsonValue(v)])),
    tensors: gguf.tensors.map((t) => ({ name: t.name, type: t.type, dims: t.dims, elements: t.elements, size: t.size, offset: t.offset })),
    totals: totals(gguf),
  };
  try {
    if (architecture === 'gemma') {
      info.kind = 'text-model';
      const m = describeTextModel(gguf);
      info.hyperparameters = {
        blocks: m.blockCount, hidden: m.hiddenSize, heads: m.headCount, kvHeads: m.headCountKv, headDim: m.keyLength,
        feedForward: m.feedForwardLength, contextLength: m.contextLength, rmsNormEps: shortestF32(m.rmsNormEps), ropeTheta: shortestF32(m.ropeTheta),
        vocabRows: m.vocabSize, outputHead: m.tensors.output ? 'separate' : 'tied to token_embd',
      };
      const t = Tokenizer.fromGGUF(gguf);
      info.tokenizer = { model: str('tokenizer.ggml.model'), tokens: t.vocabSize, bos: t.bosId, eos: t.eosId };
    } else if (architecture === 'clip') {
      info.kind = 'projector';
      const p = describeProjector(gguf);
      info.hyperparameters = {
        imageSize: p.imageSize, patchSize: p.patchSize, imageTokens: p.patchCount, blocks: p.blockCount, hidden: p.hiddenSize,
        heads: p.headCount, feedForward: p.feedForwardLength, layerNormEps: shortestF32(p.layerNormEps), projectionDim: p.projectionDim,
        imageMean: p.imageMean.map(shortestF32), imageStd: p.imageStd.map(shortestF32), ...(p.notes.length ? { notes: p.notes.join('; ') } : {}),
      };
    } else {
      // Imported here: the decoder's module loads the native kernels, which nothing else in `info` needs.
      const { SEGMENTATION_GGUF_ARCH, SegmentationDecoder } = await import('../tasks/segmentation.js');
      if (architecture !== SEGMENTATION_GGUF_ARCH) {
        const what = architecture === undefined ? 'it has no general.architecture' : `its architecture is "${architecture}"`;
        info.error = { name: 'NotPaliGemma', message: `${what}; PaliGemma uses "gemma" (text model), "clip" (projector) and "${SEGMENTATION_GGUF_ARCH}" (mask decoder)` };
        return info;
      }
      info.kind = 'segmentation-decoder';
      const d = await SegmentationDecoder.load(file);
      info.hyperparameters = { codebookSize: d.codebookSize, embeddingDim: d.embeddingDim };
    }
    info.valid = true;
  } catch (err) {
    info.error = errorInfo(err);
  }
  return info;
}

function totals(gguf: GGUFFile): FileInfo['totals'] {
  const byType: FileInfo['totals']['byType'] = {};
  let elements = 0;
  let bytes = 0;
  for (const t of gguf.tensors) {
    elements += t.elements;
    bytes += t.size;
    const entry = (byType[t.type] ??= { tensors: 0, bytes: 0 });
    entry.tensors++;
    entry.bytes += t.size;
  }
  return { tensors: gguf.tensors.length, elements, bytes, byType };
}

/** Parameters for people: `2.92 B`, `412 M`, `12.3 K`. */
function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

function metadataText(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}…` : v);
  if (v !== null && typeof v === 'object' && 'length' in v && 'itemType' in v) return `[${String(v.length)} × ${String(v.itemType)}]`;
  return JSON.stringify(v);
}

/** The plain-text report of one file. */
export function formatInfo(info: FileInfo): string {
  const out: string[] = [];
  const row = (key: string, value: string) => out.push(`${key.padEnd(12)} ${value}`);
  row('file', `${info.path} (${formatBytes(info.fileSize)}, GGUF v${info.version})`);
  row('kind', `${KIND_NAMES[info.kind]}${info.architecture ? `, architecture "${info.architecture}"` : ''}`);
  row('usable', info.valid ? 'yes' : `no: ${info.error?.message ?? 'unknown reason'}`);
  if (info.name) row('name', info.name);
  if (info.hyperparameters) row('model', Object.entries(info.hyperparameters).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join('/') : v}`).join(' · '));
  if (info.tokenizer) {
    const t = info.tokenizer;
    row('tokenizer', `${t.model ?? 'unknown model'}, ${t.tokens} tokens, bos ${t.bos}, eos ${t.eos}`);
  }
  const { tensors, elements, bytes, byType } = info.totals;
  const types = Object.entries(byType).map(([type, e]) => `${type} ${e.tensors} (${formatBytes(e.bytes)})`).join(', ');
  row('totals', `${tensors} tensors, ${formatCount(elements)} parameters, ${formatBytes(bytes)}${types ? `: ${types}` : ''}`);
  out.push('', 'metadata');
  for (const [key, value] of Object.entries(info.metadata)) out.push(`  ${key} = ${metadataText(value)}`);
  if (info.tensors.length > 0) {
    const nameWidth = Math.max(4, ...info.tensors.map((t) => t.name.length));
    const dimsOf = (d: number[]) => d.join(' × ');
    const dimsWidth = Math.max(4, ...info.tensors.map((t) => dimsOf(t.dims).length));
    out.push('', `  ${'name'.padEnd(nameWidth)}  type  ${'dims'.padEnd(dimsWidth)}  size`);
    for (const t of info.tensors) out.push(`  ${t.name.padEnd(nameWidth)}  ${t.type.padEnd(4)}  ${dimsOf(t.dims).padEnd(dimsWidth)}  ${formatBytes(t.size)}`);
  }
  return out.join('\n');
}

const OPTIONS = { json: { type: 'boolean' } } as const satisfies OptionSpecs;

/** `paligemma info`. */
const info: Command = {
  summary: 'Show what a GGUF file is, whether paligemma can use it, its metadata and tensors',
  usage: [
    'paligemma info <file.gguf…> [--json]',
    '',
    '  Tells the kind of each file (text model, projector, segmentation decoder, or other), whether',
    '  it is valid for paligemma (and what is wrong if not), its key hyperparameters, tokenizer,',
    '  metadata, tensor table (name, type, dims in ggml order, size) and totals.',
    '  --json   one JSON object per file and line (64-bit integers as strings, arrays longer',
    `           than ${SHORT_ARRAY} items summarised as { itemType, length })`,
    '',
    'Exit status: 0 when every file is usable, 1 when one is not (or is not a GGUF file), 2 bad usage.',
  ].join('\n'),
  async run(args) {
    const { positional, options } = parseArgs(args, OPTIONS);
    if (positional.length === 0) throw new UsageError('missing <file.gguf>');
    let allValid = true;
    for (const [i, file] of positional.entries()) {
      let result: FileInfo;
      try {
        await checkFileArgument('', file, 'a GGUF file', ['.gguf']);
        result = await inspectGGUF(file);
      } catch (err) {
        // Not a readable GGUF file: report it and go on with the others.
        allValid = false;
        if (options.json) console.log(JSON.stringify({ path: file, valid: false, error: errorInfo(err) }));
        reportError('info', err);
        continue;
      }
      allValid &&= result.valid;
      if (options.json) console.log(JSON.stringify(result));
      else console.log(`${i > 0 ? '\n' : ''}${formatInfo(result)}`);
    }
    return allValid ? EXIT.OK : EXIT.FAILURE;
  },
};

export default info;
