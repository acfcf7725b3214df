import { EXIT } from './errors.js';
import type { Command } from './command.js';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { parseArgs, UsageError, type OptionSpecs } from './args.js';
import { StatusLine, formatBytes } from './progress.js';
import { convertCheckpoint, OUT_TYPES } from '../convert/convert.js';
import type { ConvertProgress, OutType } from '../convert/convert.js';

interface ConvertArgs {
  hfDir: string;
  outDir: string;
  outType: OutType;
  name?: string;
}

const OPTIONS = {
  out: { type: 'string', value: 'DIR' },
  outtype: { type: 'string', choices: OUT_TYPES },
  name: { type: 'string', value: 'NAME' },
} as const satisfies OptionSpecs;

const isNpz = (input: string) => input.toLowerCase().endsWith('.npz');

/** Parses `<hf-dir> --out <dir> [--outtype t] [--name n]`; throws UsageError on bad usage. */
export function parseConvertArgs(args: string[]): ConvertArgs {
  const { positional, options } = parseArgs(args, OPTIONS);
  if (positional.length !== 1) throw new UsageError(positional.length === 0 ? 'missing <hf-dir>' : `unexpected argument ${positional[1]}`);
  if (!options.out) throw new UsageError('missing --out <dir>');
  if (isNpz(positional[0]!) && options.outtype) throw new UsageError('--outtype does not apply to the segmentation decoder (always f32: it is small)');
  return { hfDir: positional[0]!, outDir: options.out, outType: (options.outtype ?? 'f16') as OutType, name: options.name };
}

/** `paligemma convert`: Hugging Face PaliGemma checkpoint → text GGUF + projector GGUF (or vae-oid.npz → GGUF). */
const convert: Command = {
  summary: 'Convert a Hugging Face PaliGemma checkpoint to a text GGUF and a projector (mmproj) GGUF',
  usage: [
    'paligemma convert <hf-dir> --out <dir> [--outtype f16|bf16|f32|q8_0] [--name <name>]',
    '       paligemma convert vae-oid.npz --out <dir> [--name <name>]',
    '',
    '  <hf-dir>     checkpoint directory: config.json, model.safetensors (or sharded, with',
    '               model.safetensors.index.json), tokenizer.model or tokenizer.json',
    '  vae-oid.npz  the segmentation mask decoder from big_vision; written as <dir>/<name>.gguf',
    '               (F32; name default vae-oid), usable with `paligemma segment --segmentation`',
    '  --out        output directory; writes <name>-<type>.gguf and mmproj-<name>-<type>.gguf',
    '  --outtype    weight type (default f16, like the published GGUF; q8_0: Q8_0 where rows are',
    '               a multiple of 32, else f16, as `paligemma quantize --type q8_0`); norms, biases and the',
    '               position embedding are always f32',
    '  --name       model name (default: the checkpoint directory name)',
    '',
    'Prints the paths of the files written, one per line.',
  ].join('\n'),
  async run(args) {
    const parsed = parseConvertArgs(args);
    if (isNpz(parsed.hfDir)) {
      console.log(await convertDecoder(parsed.hfDir, parsed.outDir, parsed.name));
      return EXIT.OK;
    }
    const status = new StatusLine();
    const onProgress = status.enabled
      ? (p: ConvertProgress) => {
          const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 100;
          status.update(`converting ${String(pct).padStart(3)}%  ${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}  ${p.tensor}`, p.bytesDone >= p.bytesTotal);
        }
      : undefined;
    status.update('reading the checkpoint, its config and its tokenizer…', true);
    try {
      const result = await convertCheckpoint(parsed.hfDir, { outDir: parsed.outDir, outType: parsed.outType, name: parsed.name, onProgress });
      console.log(result.textPath);
      console.log(result.projectorPath);
      return EXIT.OK;
    } finally {
      status.clear();
    }
  },
};

/** vae-oid.npz → `<outDir>/<name>.gguf`, checked by the decoder's own validation; returns the path. */
async function convertDecoder(npzPath: string, outDir: string, name = path.basename(npzPath, path.extname(npzPath))): Promise<string> {
  const { readNpz, segmentationDecoderGGUF } = await import('../tasks/index.js');
  const { writeGGUF } = await import('../gguf/index.js');
  const out = path.join(outDir, `${name}.gguf`);
  await mkdir(outDir, { recursive: true });
  await writeGGUF(out, segmentationDecoderGGUF(await readNpz(npzPath)));
  return out;
}

export default convert;
