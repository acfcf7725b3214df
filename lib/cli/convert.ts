import { EXIT } from './main.js';
import type { Command } from './main.js';
import { convertCheckpoint, OUT_TYPES } from '../convert/convert.js';
import type { ConvertProgress, OutType } from '../convert/convert.js';

interface ConvertArgs {
  hfDir: string;
  outDir: string;
  outType: OutType;
  name?: string;
}

/** Parses `<hf-dir> --out <dir> [--outtype t] [--name n]`; returns an error message on bad usage. */
export function parseConvertArgs(args: string[]): ConvertArgs | string {
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    if (!['out', 'outtype', 'name'].includes(key)) return `unknown option --${key}`;
    const value = eq < 0 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '') return `--${key} needs a value`;
    flags[key] = value;
  }
  if (positional.length !== 1) return positional.length === 0 ? 'missing <hf-dir>' : `unexpected argument ${positional[1]}`;
  if (!flags.out) return 'missing --out <dir>';
  const outType = (flags.outtype ?? 'f16') as OutType;
  if (!OUT_TYPES.includes(outType)) return `--outtype must be one of ${OUT_TYPES.join(', ')}`;
  return { hfDir: positional[0]!, outDir: flags.out, outType, name: flags.name };
}

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;

/** `paligemma convert`: Hugging Face PaliGemma checkpoint → text GGUF + projector GGUF. */
const convert: Command = {
  summary: 'Convert a Hugging Face PaliGemma checkpoint to a text GGUF and a projector (mmproj) GGUF',
  usage: [
    'paligemma convert <hf-dir> --out <dir> [--outtype f16|bf16|f32] [--name <name>]',
    '',
    '  <hf-dir>     checkpoint directory: config.json, model.safetensors (or sharded, with',
    '               model.safetensors.index.json), tokenizer.model or tokenizer.json',
    '  --out        output directory; writes <name>-<type>.gguf and mmproj-<name>-<type>.gguf',
    '  --outtype    weight type (default f16, like the published GGUF); norms, biases and the',
    '               position embedding are always f32',
    '  --name       model name (default: the checkpoint directory name)',
  ].join('\n'),
  async run(args) {
    const parsed = parseConvertArgs(args);
    if (typeof parsed === 'string') {
      console.error(`paligemma convert: ${parsed}\n\nUsage: ${convert.usage}`);
      return EXIT.USAGE;
    }
    const tty = process.stderr.isTTY === true;
    let lastDraw = 0;
    const onProgress = tty
      ? (p: ConvertProgress) => {
          const now = Date.now();
          if (now - lastDraw < 100 && p.bytesDone < p.bytesTotal) return;
          lastDraw = now;
          const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 100;
          process.stderr.write(`\r\x1b[Kconverting ${String(pct).padStart(3)}%  ${gb(p.bytesDone)} / ${gb(p.bytesTotal)}  ${p.tensor}`);
        }
      : undefined;
    if (tty) process.stderr.write('reading the checkpoint, its config and its tokenizer…');
    try {
      const result = await convertCheckpoint(parsed.hfDir, { outDir: parsed.outDir, outType: parsed.outType, name: parsed.name, onProgress });
      if (tty) process.stderr.write('\r\x1b[K');
      console.log(result.textPath);
      console.log(result.projectorPath);
      return EXIT.OK;
    } catch (err) {
      if (tty) process.stderr.write('\n');
      throw err;
    }
  },
};

export default convert;
