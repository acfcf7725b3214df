/**
 * `paligemma pull <name>`: an Ollama model into the Ollama store, or `hf:<owner>/<repo>` downloaded
 * and converted to GGUF. Prints the two file paths; a progress bar goes to stderr on a terminal.
 */
import { performance } from 'node:perf_hooks';

import type { Command } from './command.js';
import { parseArgs, UsageError, type OptionSpecs } from './args.js';
import { EXIT } from './errors.js';
import { StatusLine, formatBytes, progressBar } from './progress.js';
import { OUT_TYPES, type OutType } from '../convert/convert.js';
import type { PullProgress } from '../pull/types.js';

const OPTIONS = {
  'ollama-models': { type: 'string', value: 'DIR' },
  registry: { type: 'string', value: 'URL' },
  'without-projector': { type: 'boolean' },
  out: { type: 'string', value: 'DIR' },
  outtype: { type: 'string', choices: OUT_TYPES },
  'keep-download': { type: 'boolean' },
  endpoint: { type: 'string', value: 'URL' },
} as const satisfies OptionSpecs;

/** Download speed over the last few seconds, for the progress line. */
class Rate {
  #samples: { t: number; bytes: number }[] = [];

  /** Bytes per second, or undefined until there is a second of history. */
  update(bytes: number, now = performance.now()): number | undefined {
    this.#samples.push({ t: now, bytes });
    while (this.#samples.length > 2 && now - this.#samples[0]!.t > 5000) this.#samples.shift();
    const first = this.#samples[0]!;
    const dt = (now - first.t) / 1000;
    return dt >= 1 ? (bytes - first.bytes) / dt : undefined;
  }
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '';
  const s = Math.round(seconds);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The status line for one progress report. */
export function progressLine(p: PullProgress, bytesPerSecond: number | undefined): string {
  const pct = p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : 0;
  const percent = `${String(Math.floor(pct * 100)).padStart(3)}%`;
  if (p.phase === 'manifest') return `pulling manifest of ${p.file ?? ''}…`;
  if (p.phase === 'verify') return `verifying ${p.file ?? ''} ${percent}`;
  if (p.phase === 'convert') return `converting ${percent} ${progressBar(pct, 20)} ${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}  ${p.file ?? ''}`;
  const speed = bytesPerSecond === undefined ? '' : `  ${formatBytes(bytesPerSecond)}/s  ${formatDuration((p.bytesTotal - p.bytesDone) / bytesPerSecond)} left`;
  return `pulling ${p.file ?? ''} ${percent} ${progressBar(pct, 24)} ${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}${speed}`;
}

const pull: Command = {
  summary: 'Download a model: from the Ollama registry, or from Hugging Face (converted to GGUF)',
  usage: [
    'paligemma pull <ns/model[:tag]> [--ollama-models DIR] [--without-projector] [--registry URL]',
    '       paligemma pull hf:<owner>/<repo>[@revision] [--out DIR] [--outtype f16|bf16|f32] [--keep-download]',
    '',
    '  Ollama (e.g. jyan1/paligemma-mix-224): the manifest and its layers go into the Ollama store',
    '  ($OLLAMA_MODELS or ~/.ollama/models, or --ollama-models DIR), where Ollama sees them too; run it',
    '  with `paligemma caption photo.jpg --ollama <name>`. A model without a projector layer (the vision',
    '  part) is refused before anything is downloaded, unless --without-projector is given.',
    '    --registry URL       the registry (default $PALIGEMMA_OLLAMA_REGISTRY, else https://registry.ollama.ai)',
    '',
    '  Hugging Face (e.g. hf:google/paligemma-3b-mix-224): downloads the safetensors checkpoint, config and',
    '  tokenizer, converts them to <repo>-<type>.gguf and mmproj-<repo>-<type>.gguf, and deletes the download.',
    '  Gated repositories (Google\'s PaliGemma is one) need the license accepted on the model\'s page and',
    '  an access token in HF_TOKEN (https://huggingface.co/settings/tokens).',
    '    --out DIR            where the GGUF files go (default $PALIGEMMA_MODELS, else ~/.cache/paligemma)',
    '    --outtype TYPE       weight type (default f16, like the published GGUF)',
    '    --keep-download      keep the downloaded checkpoint (in DIR/.downloads)',
    '    --endpoint URL       the Hub (default $HF_ENDPOINT, else https://huggingface.co)',
    '',
    'Downloads resume where an interrupted one stopped (run the same command again), and every file is',
    'checked against its size and sha256. Prints the text model and projector paths, one per line.',
  ].join('\n'),
  async run(args) {
    const { positional, options: o } = parseArgs(args, OPTIONS);
    if (positional.length !== 1) throw new UsageError(positional.length === 0 ? 'missing <name>' : `unexpected argument ${positional[1]}`);
    const name = positional[0]!;
    const status = new StatusLine();
    const rate = new Rate();
    let lastStep = '';
    const controller = new AbortController();
    const interrupt = () => controller.abort();
    process.once('SIGINT', interrupt);
    try {
      const { pullModel } = await import('../pull/index.js');
      const result = await pullModel(name, {
        signal: controller.signal,
        ollamaModelsDir: o['ollama-models'],
        ollamaRegistry: o.registry,
        requireProjector: !o['without-projector'],
        outDir: o.out,
        outType: o.outtype as OutType | undefined,
        keepDownload: o['keep-download'],
        huggingFaceEndpoint: o.endpoint,
        onProgress: status.enabled
          ? (p) => {
              // Redraws are throttled, except when a new step starts.
              const step = `${p.phase} ${p.file}`;
              status.update(progressLine(p, p.phase === 'download' ? rate.update(p.bytesDone) : undefined), step !== lastStep);
              lastStep = step;
            }
          : undefined,
      });
      status.clear();
      console.log(result.modelPath);
      if (result.projectorPath) console.log(result.projectorPath);
      const use = result.source === 'ollama' ? `--ollama ${result.name}` : `--model ${result.modelPath} --projector ${result.projectorPath}`;
      status.note(`pulled ${result.name}; use it with \`paligemma caption photo.jpg ${use}\``);
      return EXIT.OK;
    } catch (err) {
      if (controller.signal.aborted) {
        status.clear();
        console.error('paligemma pull: stopped; run the same command again to resume the download');
      }
      throw err;
    } finally {
      status.clear();
      process.off('SIGINT', interrupt);
    }
  },
};

export default pull;
