/**
 * `paligemma serve`: Ollama's and OpenAI's HTTP APIs over one model (lib/server). Also the model
 * options that `serve` and `worker` share: which model, how to run it, the mask decoder.
 */
import path from 'node:path';

import type { Command } from './command.js';
import { parseArgs, UsageError, type Options, type OptionSpecs } from './args.js';
import { CliError, EXIT } from './errors.js';
import { StatusLine, formatMs } from './progress.js';
import { COMMON_OPTIONS, openModel } from './tasks.js';
import type { PaliGemma } from '../model/paligemma.js';

/** Options of every long-running command that loads a model. */
export const MODEL_OPTIONS = {
  model: COMMON_OPTIONS.model,
  projector: COMMON_OPTIONS.projector,
  ollama: COMMON_OPTIONS.ollama,
  'ollama-models': COMMON_OPTIONS['ollama-models'],
  threads: COMMON_OPTIONS.threads,
  simd: COMMON_OPTIONS.simd,
  'max-pixels': COMMON_OPTIONS['max-pixels'],
  segmentation: { type: 'string', value: 'FILE' },
  'shutdown-grace': { type: 'number', min: 0, value: 'SEC' },
} as const satisfies OptionSpecs;

export const MODEL_HELP = [
  'Model (one of):',
  '  -m, --model FILE     the text GGUF, with --projector FILE (the mmproj GGUF)',
  '  --ollama NAME[:TAG]  a model pulled with Ollama (--ollama-models DIR if the store is not in',
  '                       $OLLAMA_MODELS or ~/.ollama/models)',
  '  --segmentation FILE  the mask decoder (vae-oid.npz), so that segment prompts return masks',
  '',
  'Running:',
  '  --threads N          worker threads (default: one per physical core)',
  '  --simd NAME          force a kernel set (`paligemma features` lists them)',
  '  --max-pixels N       refuse larger images (default 100000000)',
  '  --shutdown-grace SEC on SIGINT/SIGTERM, time running work gets to finish (default 10)',
];

type ModelOptions = Options<typeof MODEL_OPTIONS>;

/** A loaded model (with its mask decoder, if given) and the name clients use for it. */
export interface OpenedModel {
  model: PaliGemma;
  /** --name, else the Ollama name, else the text file's name without `.gguf`. */
  name: string;
}

/**
 * Checks the model options and loads the model, with its mask decoder and room for `sequences`
 * calls generating at once; the caller disposes the model.
 */
export async function openServedModel(o: ModelOptions & { name?: string }, sequences: number): Promise<OpenedModel> {
  if (o.model !== undefined && o.ollama !== undefined) throw new UsageError('give --model or --ollama, not both');
  if (o.model === undefined && o.ollama === undefined) throw new UsageError('missing the model: give --model FILE --projector FILE, or --ollama NAME');
  const status = new StatusLine();
  try {
    const model = await openModel(o, status, { maxSequences: sequences, segmentation: o.segmentation });
    const name = o.name ?? o.ollama ?? path.basename(o.model!).replace(/\.gguf$/i, '');
    return { model, name };
  } finally {
    status.clear();
  }
}

/**
 * Runs until SIGINT/SIGTERM: the first signal calls `close` with `--shutdown-grace`, a second one
 * with no grace (cut everything now). Resolves when `close` has.
 */
export function untilShutdown(o: { 'shutdown-grace'?: number }, close: (graceMs: number) => Promise<void>): Promise<void> {
  const graceMs = (o['shutdown-grace'] ?? 10) * 1000;
  return new Promise<void>((resolve) => {
    let signals = 0;
    const handler = (signal: NodeJS.Signals) => {
      signals++;
      console.error(
        signals === 1
          ? `paligemma: ${signal}: shutting down; running work gets ${formatMs(graceMs)} to finish (send it again to stop now)`
          : `paligemma: ${signal}: stopping now`,
      );
      void close(signals === 1 ? graceMs : 0).then(() => {
        process.off('SIGINT', handler);
        process.off('SIGTERM', handler);
        resolve();
      });
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

/** Requests generating at once: they share each decode step (one pass over the weights). */
const DEFAULT_PARALLEL = 16;

const OPTIONS = {
  ...MODEL_OPTIONS,
  host: { type: 'string', value: 'HOST' },
  port: { type: 'integer', min: 0, max: 65535 },
  parallel: { type: 'integer', min: 1, max: 64 },
  'max-queue': { type: 'integer', min: 0 },
  'max-kv-mb': { type: 'number', min: 0.01 },
  'max-body-mb': { type: 'number', min: 0.001 },
  timeout: { type: 'number', min: 0, value: 'SEC' },
  'api-key': { type: 'string', value: 'KEY' },
  name: { type: 'string', value: 'NAME' },
  quiet: { type: 'boolean' },
} as const satisfies OptionSpecs;

const USAGE = [
  'paligemma serve (--model FILE --projector FILE | --ollama NAME) [--host 127.0.0.1] [--port 11434] [--parallel N] [--api-key KEY]',
  '',
  "Serves the model over Ollama's API (/api/generate, /api/chat, /api/tags, /api/show, /api/ps,",
  "/api/version) and OpenAI's (/v1/chat/completions, /v1/models), so their clients work unchanged.",
  'docs/SERVER.md has the details.',
  '',
  'Server:',
  '  --host HOST          address to listen on (default 127.0.0.1: this machine only)',
  '  --port N             port (default 11434, as Ollama; 0 picks a free one)',
  '  --name NAME          the model name clients use (default: the Ollama name or the file name)',
  `  --parallel N         generations at once, sharing each decode step (default ${DEFAULT_PARALLEL}, at most 64)`,
  '  --max-queue N        requests waiting for a slot before 503 + Retry-After (default 64)',
  '  --max-kv-mb N        KV cache the running and waiting requests may fill, counting each',
  '                       prompt and token limit; beyond it 503 + Retry-After (default: RAM / 4)',
  '  --max-body-mb N      largest request body (default 32)',
  '  --timeout SEC        longest request, queueing included (default 600; 0 = none)',
  '  --api-key KEY        require Authorization: Bearer KEY (or set PALIGEMMA_API_KEY, which keeps',
  '                       the key out of the process list)',
  '  --quiet              no access log on stderr',
  '',
  ...MODEL_HELP,
].join('\n');

const serve: Command = {
  summary: "Serve the model over Ollama's and OpenAI's HTTP APIs",
  usage: USAGE,
  async run(args) {
    const { positional, options: o } = parseArgs(args, OPTIONS);
    if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
    const apiKey = o['api-key'] ?? (process.env.PALIGEMMA_API_KEY || undefined);
    const { createServer } = await import('../server/index.js');
    const parallel = o.parallel ?? DEFAULT_PARALLEL;
    const { model, name } = await openServedModel(o, parallel);
    try {
      const server = createServer(model, {
        name,
        parallel,
        maxQueue: o['max-queue'],
        maxKvBytes: o['max-kv-mb'] === undefined ? undefined : Math.round(o['max-kv-mb'] * 1024 * 1024),
        maxBodyBytes: o['max-body-mb'] === undefined ? undefined : Math.round(o['max-body-mb'] * 1024 * 1024),
        requestTimeoutMs: o.timeout === undefined ? undefined : Math.round(o.timeout * 1000),
        apiKey,
        log: o.quiet ? undefined : (e) => console.error(
          `${new Date().toISOString()} ${e.method} ${e.path} ${e.status} ${formatMs(e.ms)}` +
            `${e.tokens !== undefined ? ` ${e.tokens} tokens` : ''}${e.disconnected ? ' (client disconnected)' : ''}${e.error ? ` — ${e.error}` : ''}`,
        ),
      });
      const host = o.host ?? '127.0.0.1';
      const address = await server.listen(o.port ?? 11434, host).catch((err: Error) => {
        throw new CliError(`cannot listen on ${host}:${o.port ?? 11434}: ${err.message}`, o.port === undefined ? 'is Ollama running on its default port? pass --port N' : undefined);
      });
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      console.error(`paligemma serve: ${name} on http://${shown}:${address.port}${apiKey ? ' (API key required)' : ''}`);
      await untilShutdown(o, (graceMs) => server.close({ graceMs }));
      return EXIT.OK;
    } finally {
      await model.dispose();
    }
  },
};

export default serve;
