/**
 * Load on `paligemma serve` (a benchmark, not a test): the server runs as its own process (the CLI),
 * and this process is the clients, over Ollama's /api/generate.
 *
 *  1. serial: requests one after another (the baseline);
 *  2. concurrent: `--clients` clients, each sending `--per-client` requests back to back;
 *     throughput against the serial run, p50/p99 latency, failed requests, and the server's RSS
 *     sampled all along (start / peak / end);
 *  3. disconnect storm: every client starts a long streaming generation and drops the connection
 *     after a few chunks or at a deadline; then how long until the model holds no sequence (its
 *     active count from /api/ps is 0) and the server is idle, and the latency of one ordinary request.
 *
 *   node --import tsx bench/serve.ts [--model tiny|full|both] [--clients 32] [--per-client N]
 *                                    [--serial N] [--tokens N] [--parallel N] [--images N]
 *
 * `--parallel` (default: the number of clients) is the server's sequences generating at once;
 * `--images N` cycles through N distinct images (default 1: after the first request, the image
 * cache serves the vision tower's output, as for repeated questions about one picture).
 *
 * `tiny` is the test fixture model (converted into a temporary directory), `full` the full-size
 * files of `npm run bench` (bench/model-files.ts makes them in the bench cache, 5.8 GB). Absolute
 * figures depend on the machine's load; compare the figures of one run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { convertCheckpoint } from '../lib/convert/index.js';
import { benchCacheDir, ensureModelFiles } from './model-files.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const which = option('model', 'tiny');
const clients = Number(option('clients', '32'));
const parallel = option('parallel', String(clients));
const distinctImages = Number(option('images', '1'));

interface Setup {
  label: string;
  text: string;
  projector: string;
  /** The images the requests cycle through. */
  images: Buffer[];
  tokens: number;
  serial: number;
  perClient: number;
  /** num_predict of the storm's streams: long enough that they are cut, not finished. */
  stormTokens: number;
  /** When a storm client drops at the latest, if it has not read its chunks yet. */
  stormDeadlineMs: number;
}

interface Server {
  child: ChildProcess;
  base: string;
  stderr: () => string;
}

/** Starts `paligemma serve` on a free port. */
async function startServer(s: Setup): Promise<Server> {
  const args = ['--import', 'tsx', path.join(projectRoot, 'lib/cli/main.ts'), 'serve', '--model', s.text, '--projector', s.projector, '--port', '0', '--name', 'bench', '--parallel', parallel, '--max-queue', '1000', '--timeout', '0', '--quiet'];
  const child = spawn(process.execPath, args, { cwd: projectRoot, stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr!.on('data', () => {
      const m = /on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
  return { child, base: `http://127.0.0.1:${port}`, stderr: () => stderr };
}

/**
 * POSTs a generate request with node:http (fetch gives up after 300 s without response headers,
 * which queued requests on the full-size model exceed). Resolves with the status when the response
 * starts; `body` then resolves with the whole text.
 */
let sent = 0;

function post(base: string, s: Setup, options: { stream: boolean; tokens: number; signal?: AbortSignal }) {
  const image = s.images[sent++ % s.images.length]!;
  return new Promise<{ status: number; response: http.IncomingMessage; body: () => Promise<string> }>((resolve, reject) => {
    const req = http.request(`${base}/api/generate`, { method: 'POST', signal: options.signal }, (response) => {
      const body = async () => {
        let text = '';
        for await (const chunk of response) text += chunk;
        return text;
      };
      resolve({ status: response.statusCode ?? 0, response, body });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ model: 'bench', prompt: 'caption en', images: [image.toString('base64')], stream: options.stream, options: { num_predict: options.tokens } }));
  });
}

/** One non-streaming generate; resolves with its latency in ms and generated tokens, or the failure. */
async function request(base: string, s: Setup): Promise<{ ms: number; tokens: number } | { error: string }> {
  const t0 = performance.now();
  try {
    const res = await post(base, s, { stream: false, tokens: s.tokens });
    const body = JSON.parse(await res.body()) as { eval_count?: number; error?: string };
    if (res.status !== 200) return { error: `${res.status} ${body.error}` };
    return { ms: performance.now() - t0, tokens: body.eval_count ?? 0 };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

const kib = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
/** utime + stime of a process, in clock ticks (1/100 s on Linux). */
const cpuTicks = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
};
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

interface RunFigures {
  requests: number;
  failed: string[];
  wallMs: number;
  latencies: number[];
  tokens: number;
}

async function run(base: string, s: Setup, lanes: number, perLane: number): Promise<RunFigures> {
  const latencies: number[] = [];
  const failed: string[] = [];
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (let i = 0; i < perLane; i++) {
        const r = await request(base, s);
        if ('error' in r) failed.push(r.error);
        else {
          latencies.push(r.ms);
          tokens += r.tokens;
        }
      }
    }),
  );
  return { requests: lanes * perLane, failed, wallMs: performance.now() - t0, latencies: latencies.sort((a, b) => a - b), tokens };
}

function describeRun(name: string, r: RunFigures): string {
  const rate = (r.requests - r.failed.length) / (r.wallMs / 1000);
  const lat = r.latencies.length ? `p50 ${seconds(percentile(r.latencies, 50))}, p99 ${seconds(percentile(r.latencies, 99))}` : 'no latencies';
  return `${name}: ${r.requests} requests in ${seconds(r.wallMs)}: ${rate.toFixed(2)} req/s, ${(r.tokens / (r.wallMs / 1000)).toFixed(1)} tokens/s, ${lat}, ${r.failed.length} failed${r.failed.length ? ` (${[...new Set(r.failed)].slice(0, 3).join('; ')})` : ''}`;
}

/**
 * Every client starts a long stream and drops it after 1–3 chunks, or at its deadline (20 ms for a
 * quarter of them, `s.stormDeadlineMs` for the others) if that comes first: most drop while queued.
 */
async function storm(base: string, s: Setup): Promise<{ dropped: number; chunks: number }> {
  let chunks = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      const controller = new AbortController();
      const keep = i % 4;
      const deadline = setTimeout(() => controller.abort(), keep === 0 ? 20 : s.stormDeadlineMs);
      try {
        const res = await post(base, s, { stream: true, tokens: s.stormTokens, signal: controller.signal });
        let read = 0;
        for await (const _ of res.response) {
          chunks++;
          if (++read >= keep) break;
        }
      } catch {
        // dropped before or while reading
      }
      clearTimeout(deadline);
      controller.abort();
    }),
  );
  return { dropped: clients, chunks };
}

/** The model's and the server's load, from /api/ps. */
async function ps(base: string): Promise<{ sequences: { active: number; kvBytes: number }; requests: { running: number } }> {
  const body = (await (await fetch(`${base}/api/ps`)).json()) as { models: { paligemma: Awaited<ReturnType<typeof ps>> }[] };
  return body.models[0]!.paligemma;
}

/** `n` distinct images: `image` with one pixel changed in each but the first (PNG). */
async function variants(image: Buffer, n: number): Promise<Buffer[]> {
  const sharp = (await import('sharp')).default;
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  return Promise.all(
    Array.from({ length: n }, (_, i) => {
      if (i === 0) return image;
      const pixels = Buffer.from(data);
      pixels[0] = (pixels[0]! + i) & 0xff;
      pixels[1] = (pixels[1]! + (i >> 8)) & 0xff;
      return sharp(pixels, { raw: { width: info.width, height: info.height, channels: info.channels } }).png().toBuffer();
    }),
  );
}

async function bench(s: Setup): Promise<void> {
  console.log(`\n== ${s.label}: ${clients} clients, --parallel ${parallel}, ${s.tokens} tokens per request, ${s.images.length} distinct image(s) (loadavg ${loadavg()})`);
  const server = await startServer(s);
  const pid = server.child.pid!;
  try {
    await request(server.base, s); // warm: first call, image cache
    // The server's CPU time per request: less sensitive than wall time to what else the machine runs.
    let ticks = cpuTicks(pid);
    const cpuPerRequest = (requests: number) => {
      const used = cpuTicks(pid) - ticks;
      ticks = cpuTicks(pid);
      return `; server CPU ${(used / 100 / requests).toFixed(2)} s per request (loadavg ${loadavg()})`;
    };
    const serial = await run(server.base, s, 1, s.serial);
    console.log(describeRun('serial    ', serial) + cpuPerRequest(s.serial));

    const rss: number[] = [kib(pid, 'VmRSS')];
    const sampler = setInterval(() => rss.push(kib(pid, 'VmRSS')), 250);
    const concurrent = await run(server.base, s, clients, s.perClient);
    clearInterval(sampler);
    rss.push(kib(pid, 'VmRSS'));
    console.log(describeRun('concurrent', concurrent) + cpuPerRequest(concurrent.requests));
    const serialRate = s.serial / serial.wallMs;
    const concurrentRate = (concurrent.requests - concurrent.failed.length) / concurrent.wallMs;
    console.log(`throughput concurrent ÷ serial: ${(concurrentRate / serialRate).toFixed(2)}x; server RSS start ${mb(rss[0]!)}, peak ${mb(Math.max(...rss))}, end ${mb(rss.at(-1)!)}`);

    const before = cpuTicks(pid);
    const t0 = performance.now();
    const st = await storm(server.base, s);
    const stormMs = performance.now() - t0;
    // No sequence left behind: the model's active count (sequences holding a slot and KV cache)
    // and the server's running requests go to 0.
    let load = await ps(server.base);
    while ((load.sequences.active > 0 || load.requests.running > 0) && performance.now() - t0 < stormMs + 300_000) {
      await new Promise((r) => setTimeout(r, 50));
      load = await ps(server.base);
    }
    const freedMs = performance.now() - t0 - stormMs;
    // Idle = a second in which the server used under 0.05 s of CPU.
    const idleStart = performance.now();
    let window = 0;
    do {
      const from = cpuTicks(pid);
      await new Promise((r) => setTimeout(r, 1000));
      window = cpuTicks(pid) - from;
    } while (window >= 5 && performance.now() - idleStart < 300_000);
    const idleMs = performance.now() - idleStart - 1000;
    const after = await request(server.base, s);
    console.log(
      `disconnect storm: ${st.dropped} streams of ${s.stormTokens} tokens dropped after 1–3 chunks or a deadline (${st.chunks} chunks read) in ${seconds(stormMs)}, ` +
        `server CPU ${((cpuTicks(pid) - before) / 100).toFixed(2)} s; ${load.sequences.active} sequences and ${load.requests.running} requests left ${seconds(freedMs)} after the last client left (KV ${mb(load.sequences.kvBytes)}); ` +
        `idle ${seconds(Math.max(0, idleMs))} after that ` +
        `(${window < 5 ? 'no generation left behind' : 'STILL BUSY'}); next request ${'error' in after ? `FAILED ${after.error}` : seconds(after.ms)}; RSS ${mb(kib(pid, 'VmRSS'))}`,
    );
  } finally {
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
  }
}

const tiny = async (): Promise<{ setup: Setup; cleanup: () => void }> => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pg-serve-bench-'));
  const f = await convertCheckpoint(path.join(projectRoot, 'test/fixtures/paligemma-tiny'), { outDir: dir, outType: 'f32' });
  const images = await variants(readFileSync(path.join(projectRoot, 'test/fixtures/paligemma-tiny/golden/img_a1.png')), distinctImages);
  const perClient = Number(option('per-client', '4'));
  return {
    setup: { label: 'tiny model', text: f.textPath, projector: f.projectorPath, images, tokens: Number(option('tokens', '20')), serial: Number(option('serial', String(clients))), perClient, stormTokens: 2000, stormDeadlineMs: 2000 },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
};

const full = async (): Promise<{ setup: Setup; cleanup: () => void }> => {
  const f = await ensureModelFiles(benchCacheDir(), { check: false });
  return {
    setup: { label: 'full-size model', text: f.text, projector: f.projector, images: await variants(readFileSync(f.image), distinctImages), tokens: Number(option('tokens', '8')), serial: Number(option('serial', '4')), perClient: Number(option('per-client', '1')), stormTokens: 100, stormDeadlineMs: 30_000 },
    cleanup: () => {},
  };
};

console.log(`paligemma serve bench on ${os.cpus().length} CPUs`);
for (const make of which === 'both' ? [tiny, full] : which === 'full' ? [full] : [tiny]) {
  const { setup, cleanup } = await make();
  try {
    await bench(setup);
  } finally {
    cleanup();
  }
}
