/**
 * `paligemma worker` on BullMQ: worker processes (the CLI) take describe jobs from a Redis started
 * here (Debian's redis-server on a free port), with the tiny fixture model. Shows: results are the
 * golden answers; bad payloads fail their job, never the worker; several workers share one
 * page-cached copy of the weights (PSS); a worker killed mid-job loses nothing (BullMQ's stalled-job
 * recovery hands the job to another worker and every job completes exactly once); SIGTERM finishes
 * the running job, or returns it to the queue once the grace period is over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents, type Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint } from '../lib/convert/index.js';
import { readGGUF } from '../lib/gguf/index.js';
import { parseDetections } from '../lib/tasks/parse.js';
import { Tokenizer } from '../lib/tokenizer/index.js';
import { enqueueDescribe, type DescribeJobResult } from '../lib/worker/index.js';
import { FIXTURE_DIR, GOLDEN_DIR, imageBytes, manifest } from './helpers/golden.js';
import { hasRedisServer, startRedis, type RedisServer } from './helpers/redis.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(projectRoot, 'lib/cli/main.ts');
const golden = (name: string) => manifest.cases.find((c) => c.name === name)!;

const redisAvailable = hasRedisServer();
if (!redisAvailable) console.warn('worker tests skipped: redis-server is not installed (apt-get install redis-server)');

let dir: string;
let redis: RedisServer;
let textPath: string;
let projectorPath: string;
let tokenizer: Tokenizer;
const workers: WorkerProcess[] = [];
const closers: (() => Promise<unknown>)[] = [];

interface WorkerProcess {
  child: ChildProcess;
  /** `host:pid`, once it takes jobs. */
  name: Promise<string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  stderr(): string;
}

/** Starts `paligemma worker` on `queue`; stalled jobs are retaken within about a second. */
function startWorker(queue: string, extra: string[] = []): WorkerProcess {
  const args = ['--redis', redis.url, '--queue', queue, '--model', textPath, '--projector', projectorPath, '--lock-duration', '1000', '--stalled-interval', '500', ...extra];
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'worker', ...args], { cwd: projectRoot });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const name = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', () => {
      const m = /paligemma worker: (\S+) takes jobs/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    void exit.then(() => reject(new Error(`worker exited: ${stderr}`)));
  });
  name.catch(() => {});
  const w = { child, name, exit, stderr: () => stderr };
  workers.push(w);
  return w;
}

/** A queue and its event stream, ready, counting completions per job id. */
async function openQueue(name: string): Promise<{ queue: Queue; events: QueueEvents; completions: Map<string, number>; stalled: Set<string> }> {
  const connection = { host: '127.0.0.1', port: redis.port };
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  await events.waitUntilReady();
  const completions = new Map<string, number>();
  const stalled = new Set<string>();
  events.on('completed', ({ jobId }) => completions.set(jobId, (completions.get(jobId) ?? 0) + 1));
  events.on('stalled', ({ jobId }) => stalled.add(jobId));
  closers.push(() => events.close(), () => queue.close());
  return { queue, events, completions, stalled };
}

async function until(check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sums Rss and Pss (bytes) over a process's mappings of the given files, from /proc/<pid>/smaps. */
function mappedMemory(pid: number, files: string[]): { rss: number; pss: number } {
  const out = { rss: 0, pss: 0 };
  let inFile = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inFile = files.some((f) => line.endsWith(` ${f}`));
    else if (inFile) {
      const m = /^(Rss|Pss):\s+(\d+) kB/.exec(line);
      if (m) out[m[1] === 'Rss' ? 'rss' : 'pss'] += Number(m[2]) * 1024;
    }
  }
  return out;
}

const rollupPss = (pid: number) => Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))![1]) * 1024;

describe.runIf(redisAvailable)('paligemma worker on BullMQ', () => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'pg-worker-'));
    ({ textPath, projectorPath } = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f32' }));
    tokenizer = Tokenizer.fromGGUF(await readGGUF(textPath));
    redis = await startRedis();
  });

  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exit));
    for (const close of closers) await close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs describe jobs from enqueueDescribe and stores the golden answers', async () => {
    const { queue, events } = await openQueue('basic');
    const worker = startWorker('basic');
    const name = await worker.name;
    const c = golden('a1_caption');
    const bytesJob = await enqueueDescribe(queue, { image: imageBytes('img_a1.png'), prompt: c.prompt, options: { maxTokens: 12 } });
    const pathJob = await enqueueDescribe(queue, { image: { path: path.join(GOLDEN_DIR, 'img_a2.jpg') }, prompt: 'answer en what is in the image?', options: { maxTokens: 12 } });
    const detectJob = await enqueueDescribe(queue, { image: imageBytes('img_a1.png'), prompt: 'detect cat', options: { maxTokens: 12 } });
    const [a, b, d] = (await Promise.all([bytesJob, pathJob, detectJob].map((j) => j.waitUntilFinished(events, 60_000)))) as DescribeJobResult[];
    expect(a).toMatchObject({ text: tokenizer.decode(c.generated_ids), tokens: c.generated_ids, stopReason: 'maxTokens', prompt: c.prompt, worker: name });
    expect(a!.timings.promptTokens).toBe(c.prefix_len);
    expect(b!.tokens).toEqual(golden('a2_answer').generated_ids);
    expect(d!.task).toEqual({ task: 'detect', image: d!.image, ...parseDetections(d!.text, d!.image) });
    expect((await queue.getJob(bytesJob.id!))!.processedBy).toBe(name);
  });

  it('a bad payload fails its job at once with the reason; the worker goes on', async () => {
    const { queue, events } = await openQueue('basic');
    const good = imageBytes('img_a1.png').toString('base64');
    const cases: [unknown, RegExp][] = [
      ['just a string', /the job data must be an object/],
      [{ prompt: 'caption en' }, /image must be a base64 string or \{ path \}/],
      [{ image: 'not base64!!' }, /image is not valid base64/],
      [{ image: Buffer.from('not an image at all').toString('base64') }, /format|image/i],
      [{ image: { path: '/nonexistent/cat.jpg' } }, /cannot read image.path \/nonexistent\/cat.jpg: no such file on this worker/],
      [{ image: good, options: { maxTokens: -1 } }, /maxTokens must be a positive integer/],
      [{ image: good, options: { maxTokens: 100_000 } }, /context length/],
      [{ image: good, options: { temperature: 'hot' } }, /temperature/],
      [{ image: good, options: { n: 2 } }, /options.n is not a job option/],
    ];
    for (const [data, reason] of cases) {
      const job = await queue.add('describe', data, { attempts: 3 });
      // Polled rather than awaited through QueueEvents: the job fails within milliseconds.
      await until(async () => ['failed', 'completed'].includes(await job.getState()));
      const stored = (await queue.getJob(job.id!))!;
      expect(await stored.getState()).toBe('failed');
      expect(stored.failedReason).toMatch(reason);
      expect(stored.attemptsMade).toBe(1); // no retries: it could never succeed
    }
    const after = await enqueueDescribe(queue, { image: good, options: { maxTokens: 3 } });
    expect(((await after.waitUntilFinished(events, 30_000)) as DescribeJobResult).tokens).toHaveLength(3);
    expect(workers[0]!.child.exitCode).toBeNull();
    expect(workers[0]!.stderr()).toMatch(/job \d+ failed in .*: the job data must be an object/);
  });

  describe('three workers on one machine', () => {
    let shared: Awaited<ReturnType<typeof openQueue>>;
    let names: string[];

    beforeAll(async () => {
      // Only these three may map the model files while their memory is measured.
      for (const w of workers) w.child.kill('SIGTERM');
      await Promise.all(workers.map((w) => w.exit));
      shared = await openQueue('shared');
      const started = [startWorker('shared'), startWorker('shared'), startWorker('shared')];
      names = await Promise.all(started.map((w) => w.name));
    });

    it('share one page-cached copy of the weights: each maps it all, PSS ≈ mapped size ÷ 3', async () => {
      // Jobs until every worker has run one (and so touched every weight).
      const ran = new Set<string>();
      for (let i = 0; i < 40 && ran.size < 3; i++) {
        const jobs = await Promise.all([0, 1, 2].map(() => enqueueDescribe(shared.queue, { image: imageBytes('img_a1.png'), options: { maxTokens: 20 } })));
        for (const r of (await Promise.all(jobs.map((j) => j.waitUntilFinished(shared.events, 60_000)))) as DescribeJobResult[]) ran.add(r.worker);
      }
      expect([...ran].sort()).toEqual([...names].sort());
      const files = [textPath, projectorPath];
      const fileBytes = files.reduce((n, f) => n + statSync(f).size, 0);
      const weightBytes = (await Promise.all(files.map((f) => readGGUF(f)))).reduce((n, g) => n + g.fileSize - g.dataOffset, 0);
      const pids = workers.slice(-3).map((w) => w.child.pid!);
      const mem = pids.map((pid) => mappedMemory(pid, files));
      console.log(
        `weights shared by 3 workers: files ${(fileBytes / 1e6).toFixed(1)} MB (tensor data ${(weightBytes / 1e6).toFixed(1)} MB); per worker ` +
          mem.map((m, i) => `mapped Rss ${(m.rss / 1e6).toFixed(1)} MB, Pss ${(m.pss / 1e6).toFixed(1)} MB, process Pss ${(rollupPss(pids[i]!) / 1e6).toFixed(1)} MB`).join('; '),
      );
      for (const m of mem) {
        expect(m.rss).toBeGreaterThanOrEqual(0.9 * weightBytes); // every worker maps every weight…
        expect(m.pss).toBeGreaterThan(0.25 * m.rss); // …but is charged about a third of it
        expect(m.pss).toBeLessThan(0.42 * m.rss);
      }
      const totalPss = mem.reduce((n, m) => n + m.pss, 0);
      expect(totalPss / Math.max(...mem.map((m) => m.rss))).toBeGreaterThan(0.9); // one copy in all
      expect(totalPss / Math.max(...mem.map((m) => m.rss))).toBeLessThan(1.1);
    });

    it('a worker killed with SIGKILL mid-job loses no job: each completes exactly once', async () => {
      const long = await enqueueDescribe(shared.queue, { image: imageBytes('img_a2.jpg'), options: { maxTokens: 600 } });
      await until(async () => (await shared.queue.getJob(long.id!))?.processedBy !== undefined && (await long.getState()) === 'active');
      const victimName = (await shared.queue.getJob(long.id!))!.processedBy!;
      const victim = workers.find((w) => w.child.pid === Number(victimName.split(':').at(-1)))!;
      const short = await Promise.all(Array.from({ length: 8 }, (_, i) => enqueueDescribe(shared.queue, { image: imageBytes('img_a1.png'), options: { maxTokens: 5 + i } })));
      expect(await long.getState()).toBe('active'); // still running: the kill lands mid-job
      victim.child.kill('SIGKILL');
      expect((await victim.exit).signal).toBe('SIGKILL');
      const results = (await Promise.all([long, ...short].map((j) => j.waitUntilFinished(shared.events, 60_000)))) as DescribeJobResult[];
      expect(results[0]!.worker).not.toBe(victimName);
      expect(results[0]!.tokens).toHaveLength(600);
      expect(shared.stalled.has(long.id!)).toBe(true);
      await new Promise((r) => setTimeout(r, 500)); // late duplicates would show up here
      for (const j of [long, ...short]) expect(shared.completions.get(j.id!), `job ${j.id}`).toBe(1);
    });

    it('SIGTERM lets the running job finish before the worker exits', async () => {
      const job = await enqueueDescribe(shared.queue, { image: imageBytes('img_a1.png'), options: { maxTokens: 400 } });
      await until(async () => (await job.getState()) === 'active' && (await shared.queue.getJob(job.id!))?.processedBy !== undefined);
      const runnerName = (await shared.queue.getJob(job.id!))!.processedBy!;
      const runner = workers.find((w) => w.child.pid === Number(runnerName.split(':').at(-1)))!;
      let completedAt = 0;
      shared.events.on('completed', ({ jobId }) => {
        if (jobId === job.id) completedAt = Date.now();
      });
      runner.child.kill('SIGTERM');
      const exit = await runner.exit;
      expect(exit.code).toBe(0);
      const stored = (await shared.queue.getJob(job.id!))!;
      expect(await stored.getState()).toBe('completed');
      expect((stored.returnvalue as DescribeJobResult).worker).toBe(runnerName);
      await until(() => completedAt > 0);
      expect(completedAt).toBeLessThanOrEqual(exit.at + 100);
      expect(runner.stderr()).toMatch(/SIGTERM: shutting down/);
    });
  });

  it('SIGTERM past the grace period returns the running job to the queue; another worker completes it once', async () => {
    const { queue, events, completions } = await openQueue('grace');
    const first = startWorker('grace', ['--shutdown-grace', '0.3']);
    await first.name;
    const job: Job = await enqueueDescribe(queue, { image: imageBytes('img_a1.png'), options: { maxTokens: 1000 } });
    await until(async () => (await job.getState()) === 'active');
    first.child.kill('SIGTERM');
    expect((await first.exit).code).toBe(0);
    expect(await job.getState()).toBe('waiting');
    expect(first.stderr()).toMatch(/returned/);
    const second = startWorker('grace');
    const result = (await job.waitUntilFinished(events, 60_000)) as DescribeJobResult;
    expect(result.worker).toBe(await second.name);
    expect(result.tokens).toHaveLength(1000);
    expect(completions.get(job.id!)).toBe(1);
  });

  it('bad usage exits 2', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'worker', '--queue', 'q', '--model', 'm.gguf'], { cwd: projectRoot, env: { ...process.env, REDIS_URL: '' } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(2);
    expect(stderr).toMatch(/missing --redis URL \(or set REDIS_URL\)/);
  });
});
