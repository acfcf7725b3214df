/**
 * `runWorker(model, options)`: consumes describe jobs from a BullMQ queue on Redis and stores their
 * results (`paligemma worker`). BullMQ is an optional peer dependency, loaded here on demand.
 *
 * Failure handling leans on BullMQ: a worker that dies mid-job stops renewing the job's lock, and
 * another worker's stalled-job check puts the job back in the queue. A bad payload fails its job
 * at once with the reason (no retries: it can never succeed); anything else fails the attempt and
 * follows the job's `attempts`. On shutdown, running jobs get a grace period to finish, then go
 * back to the queue.
 */
import os from 'node:os';

import type { Job, Worker } from 'bullmq';

import { ImageError } from '../image/errors.js';
import { PaliGemmaError } from '../errors.js';
import type { ServedModel } from '../server/generate.js';
import { taskResult } from '../server/task-result.js';
import { TaskError } from '../tasks/errors.js';
import type { SegmentationDecoder } from '../tasks/segmentation.js';
import { checkJobData, jobImage, JobDataError, type DescribeJobResult } from './job.js';
import { loadBullmq } from './optional.js';

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  /** Redis URL: `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. */
  redis: string;
  /** The BullMQ queue name. */
  queue: string;
  /**
   * Jobs run at once by this worker, sharing each decode step (default: the model's
   * `maxSequences`, else 1). A few rather than many, so that idle workers elsewhere get jobs too.
   */
  concurrency?: number;
  /** The mask decoder, so that segment jobs return masks (default: the model's own). */
  segmentation?: SegmentationDecoder;
  /** BullMQ's job lock duration (default 30 s): how long a dead worker's job stays locked. */
  lockDurationMs?: number;
  /** BullMQ's stalled-job check interval (default 30 s). */
  stalledIntervalMs?: number;
  /** This worker's name in job records (`processedBy`; default `host:pid`). */
  name?: string;
  /** Called when a job ends. */
  log?: (entry: WorkerLogEntry) => void;
}

/** One finished job attempt. */
export interface WorkerLogEntry {
  jobId: string;
  outcome: 'completed' | 'failed' | 'returned';
  ms: number;
  tokens?: number;
  /** Why it failed, or was returned to the queue. */
  reason?: string;
}

/** A running worker. */
export interface QueueWorker {
  /** This worker's name (`processedBy` of its jobs). */
  readonly name: string;
  /** Jobs in progress. */
  readonly running: number;
  /**
   * Stops taking jobs, lets running ones finish for up to `graceMs` (default 10 s), returns the
   * rest to the queue, and closes the Redis connections. The model is not disposed.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

/** BullMQ's connection options for a Redis URL. */
export function redisConnection(url: string): { host: string; port: number; username?: string; password?: string; db?: number; tls?: object } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`the Redis URL ${JSON.stringify(url)} is not a URL; expected redis://host:port`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new TypeError(`the Redis URL must start with redis:// or rediss://, got ${u.protocol}//`);
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new TypeError(`the database in the Redis URL must be a number, got ${db}`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.username && { username: decodeURIComponent(u.username) }),
    ...(u.password && { password: decodeURIComponent(u.password) }),
    ...(db !== '' && { db: Number(db) }),
    ...(u.protocol === 'rediss:' && { tls: {} }),
  };
}

const DEFAULT_GRACE_MS = 10_000;

/** The reason running jobs are aborted with when the grace period is over. */
const SHUTDOWN = new Error('the worker is shutting down');

/** Starts consuming describe jobs; resolves once connected to Redis. */
export async function runWorker(model: ServedModel, options: WorkerOptions): Promise<QueueWorker> {
  const concurrency = options.concurrency ?? model.sequences?.maxSequences ?? 1;
  const decoder = options.segmentation ?? model.segmentation;
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new TypeError(`runWorker: concurrency must be an integer ≥ 1, got ${concurrency}`);
  if (typeof options.queue !== 'string' || options.queue === '') throw new TypeError('runWorker: queue must be a non-empty string');
  const connection = redisConnection(options.redis);
  const { Worker, UnrecoverableError, WaitingError } = await loadBullmq();
  const name = options.name ?? `${os.hostname()}:${process.pid}`;
  const shutdown = new AbortController();

  let running = 0;
  const processJob = async (job: Job, token?: string): Promise<DescribeJobResult> => {
    const start = performance.now();
    running++;
    const log = (outcome: WorkerLogEntry['outcome'], extra: Partial<WorkerLogEntry> = {}) =>
      options.log?.({ jobId: job.id ?? '', outcome, ms: performance.now() - start, ...extra });
    try {
      const { image, prompt, options: gen } = checkJobData(job.data);
      const bytes = await jobImage(image);
      const r = await model.describe(bytes, { ...gen, prompt, signal: shutdown.signal });
      const result: DescribeJobResult = {
        text: r.text,
        tokens: r.tokens,
        stopReason: r.stopReason,
        timings: r.timings,
        image: r.image!,
        prompt,
        worker: name,
      };
      const task = await taskResult(prompt, r.text, r.image!, decoder);
      if (task) result.task = task;
      log('completed', { tokens: r.tokens.length });
      return result;
    } catch (err) {
      if (shutdown.signal.aborted && err === shutdown.signal.reason) {
        await job.moveToWait(token);
        log('returned', { reason: SHUTDOWN.message });
        throw new WaitingError();
      }
      const reason = err instanceof Error ? err.message : String(err);
      log('failed', { reason });
      // Input that can never succeed: fail the job now rather than retry it.
      if (isBadInput(err)) throw new UnrecoverableError(reason);
      throw err;
    } finally {
      running--;
    }
  };

  const worker: Worker = new Worker(options.queue, processJob, {
    connection,
    concurrency,
    name,
    ...(options.lockDurationMs !== undefined && { lockDuration: options.lockDurationMs }),
    ...(options.stalledIntervalMs !== undefined && { stalledInterval: options.stalledIntervalMs }),
  });
  // Connection trouble is retried by ioredis; report it instead of crashing on an unhandled 'error'.
  worker.on('error', (err) => console.error(`paligemma worker: ${err.message}`));
  await worker.waitUntilReady();

  let closing: Promise<void> | undefined;
  const timers: NodeJS.Timeout[] = [];
  return {
    name,
    get running() {
      return running;
    },
    close({ graceMs = DEFAULT_GRACE_MS } = {}) {
      timers.push(setTimeout(() => shutdown.abort(SHUTDOWN), graceMs));
      closing ??= worker.close().finally(() => timers.forEach(clearTimeout));
      return closing;
    },
  };
}

function isBadInput(err: unknown): boolean {
  return (
    err instanceof JobDataError ||
    err instanceof ImageError ||
    err instanceof TaskError ||
    (err instanceof PaliGemmaError && err.code !== 'DISPOSED')
  );
}
