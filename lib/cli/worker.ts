/**
 * `paligemma worker`: runs describe jobs from a BullMQ queue on Redis (lib/worker), until
 * SIGINT/SIGTERM, which lets running jobs finish (or returns them to the queue) before exiting.
 */
import type { Command } from './command.js';
import { parseArgs, UsageError, type OptionSpecs } from './args.js';
import { CliError, EXIT } from './errors.js';
import { formatMs } from './progress.js';
import { MODEL_HELP, MODEL_OPTIONS, openServedModel, untilShutdown } from './serve.js';

/**
 * Jobs a worker runs at once: they share each decode step, so a worker gets through several jobs
 * in about the time of one; a few rather than many, so that idle workers elsewhere get jobs too.
 */
const DEFAULT_CONCURRENCY = 8;

const OPTIONS = {
  ...MODEL_OPTIONS,
  redis: { type: 'string', value: 'URL' },
  queue: { type: 'string', value: 'NAME' },
  concurrency: { type: 'integer', min: 1, max: 64 },
  'lock-duration': { type: 'integer', min: 100, value: 'MS' },
  'stalled-interval': { type: 'integer', min: 100, value: 'MS' },
  quiet: { type: 'boolean' },
} as const satisfies OptionSpecs;

const USAGE = [
  'paligemma worker --redis URL --queue NAME (--model FILE --projector FILE | --ollama NAME) [--concurrency N]',
  '',
  'Runs describe jobs ({ image: base64 | { path }, prompt, options }) from a BullMQ queue and stores',
  'their results in the job. Needs the bullmq package (npm install bullmq). docs/SERVER.md has the',
  'details, and how to enqueue jobs with enqueueDescribe().',
  '',
  'Queue:',
  '  --redis URL          redis://[user:password@]host[:port][/db] (default: $REDIS_URL)',
  '  --queue NAME         the BullMQ queue',
  `  --concurrency N      jobs run at once, sharing each decode step (default ${DEFAULT_CONCURRENCY}, at most 64)`,
  "  --lock-duration MS   BullMQ's job lock (default 30000): how soon a dead worker's job is retaken",
  "  --stalled-interval MS  BullMQ's stalled-job check interval (default 30000)",
  '  --quiet              no log line per job on stderr',
  '',
  ...MODEL_HELP,
].join('\n');

const worker: Command = {
  summary: 'Run describe jobs from a BullMQ queue on Redis',
  usage: USAGE,
  async run(args) {
    const { positional, options: o } = parseArgs(args, OPTIONS);
    if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
    const redis = o.redis ?? (process.env.REDIS_URL || undefined);
    if (redis === undefined) throw new UsageError('missing --redis URL (or set REDIS_URL)');
    if (o.queue === undefined) throw new UsageError('missing --queue NAME');
    const { runWorker, redisConnection } = await import('../worker/index.js');
    try {
      redisConnection(redis);
    } catch (err) {
      throw new UsageError(`--redis: ${(err as Error).message}`);
    }
    // Before the model loads: a missing package should not cost a model load.
    const { loadBullmq } = await import('../worker/optional.js');
    await loadBullmq().catch((err: Error) => {
      throw err.name === 'MissingDependencyError' ? new CliError(err.message, 'bullmq is an optional peer dependency of paligemma, needed only by queue workers') : err;
    });
    const concurrency = o.concurrency ?? DEFAULT_CONCURRENCY;
    const { model } = await openServedModel(o, concurrency);
    try {
      const queueWorker = await runWorker(model, {
        redis,
        queue: o.queue,
        concurrency,
        lockDurationMs: o['lock-duration'],
        stalledIntervalMs: o['stalled-interval'],
        log: o.quiet ? undefined : (e) => console.error(
          `${new Date().toISOString()} job ${e.jobId} ${e.outcome} in ${formatMs(e.ms)}${e.tokens !== undefined ? ` (${e.tokens} tokens)` : ''}${e.reason ? `: ${e.reason}` : ''}`,
        ),
      });
      console.error(`paligemma worker: ${queueWorker.name} takes jobs from queue ${o.queue} on ${redis.replace(/\/\/[^@]*@/, '//***@')}`);
      await untilShutdown(o, (graceMs) => queueWorker.close({ graceMs }));
      return EXIT.OK;
    } finally {
      await model.dispose();
    }
  },
};

export default worker;
