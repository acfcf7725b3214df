import { EXIT } from './errors.js';
import type { Command } from './command.js';

import { parseArgs, UsageError, type OptionSpecs } from './args.js';
import { StatusLine, formatBytes } from './progress.js';
import { QUANT_MIXES } from '../quant/plan.js';
import type { QuantMix } from '../quant/plan.js';
import type { QuantizeProgress } from '../quant/quantize.js';

const OPTIONS = {
  type: { type: 'string', choices: QUANT_MIXES, value: 'TYPE' },
} as const satisfies OptionSpecs;

/** Parses `<in.gguf> <out.gguf> --type t`; throws UsageError on bad usage. */
export function parseQuantizeArgs(args: string[]): { input: string; output: string; type: QuantMix } {
  const { positional, options } = parseArgs(args, OPTIONS);
  if (positional.length < 2) throw new UsageError(positional.length === 0 ? 'missing <in.gguf> and <out.gguf>' : 'missing <out.gguf>');
  if (positional.length > 2) throw new UsageError(`unexpected argument ${positional[2]}`);
  if (!options.type) throw new UsageError(`missing --type (${QUANT_MIXES.join('|')})`);
  return { input: positional[0]!, output: positional[1]!, type: options.type as QuantMix };
}

/** `paligemma quantize`: an F16/BF16/F32 GGUF → a quantized GGUF (text model or projector). */
const quantize: Command = {
  summary: 'Quantize a text or projector GGUF (Q8_0, Q4_0, Q4_K_M, Q6_K), as llama.cpp does',
  usage: [
    `paligemma quantize <in.gguf> <out.gguf> --type ${QUANT_MIXES.join('|')}`,
    '',
    '  <in.gguf>   the text model or the projector (mmproj), with F16, BF16 or F32 weights',
    '  <out.gguf>  where to write the quantized file (written under a temporary name, then renamed)',
    '  --type      q8_0    every weight Q8_0 (8.5 bits per weight)',
    '              q4_0    Q4_0, the tied token embedding / output head Q6_K',
    '              q4_k_m  llama.cpp\'s Q4_K_M mix: Q4_K, with Q6_K for the token embedding and for',
    '                      attn_v and ffn_down on the layers llama.cpp gives more bits',
    '              q6_k    every weight Q6_K',
    '              The projector gets Q8_0 for every type (F16 where rows are not a multiple of 32).',
    '              Norms, biases and position embeddings stay F32.',
    '',
    'The bytes are those of llama.cpp\'s reference quantizers (no importance matrix), so llama.cpp',
    'loads the file. Progress goes to stderr; the output path is printed when done.',
  ].join('\n'),
  async run(args) {
    const { input, output, type } = parseQuantizeArgs(args);
    const { quantizeModel } = await import('../quant/quantize.js');
    const status = new StatusLine();
    const onProgress = status.enabled
      ? (p: QuantizeProgress) => {
          const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 100;
          status.update(`quantizing ${String(pct).padStart(3)}%  ${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}  ${p.tensor}`, p.bytesDone >= p.bytesTotal);
        }
      : undefined;
    const controller = new AbortController();
    const interrupt = () => controller.abort();
    process.once('SIGINT', interrupt);
    try {
      const result = await quantizeModel(input, output, { type, onProgress, signal: controller.signal });
      status.note(`${result.kind} model: ${formatBytes(result.bytesIn)} -> ${formatBytes(result.bytesOut)}`);
      console.log(result.path);
      return EXIT.OK;
    } finally {
      process.off('SIGINT', interrupt);
      status.clear();
    }
  },
};

export default quantize;
