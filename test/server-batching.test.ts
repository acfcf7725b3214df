/**
 * `paligemma serve` on the model's step scheduler, with the tiny fixture model: concurrent requests
 * share decode steps and each gets its golden answer; `parallel` is the sequences generating at
 * once; KV-memory admission refuses with 503 + Retry-After (400 for a request too large alone); a
 * client that disconnects — mid-stream or during a chunked prefill — frees its sequence at once;
 * /api/ps reports the load. The model's native calls are recorded (test/helpers/native-log.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint, type ConvertResult } from '../lib/convert/index.js';
import type { PaliGemma } from '../lib/model/paligemma.js';
import { createServer, type PaliGemmaServer, type ServerOptions } from '../lib/server/index.js';
import { FIXTURE_DIR, imageBytes, manifest } from './helpers/golden.js';
import { decodes, recordedModel, short, type NativeCall, type RecordedModel } from './helpers/native-log.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NAME = 'tiny';
const golden = (name: string) => manifest.cases.find((c) => c.name === name)!;
const a1 = imageBytes('img_a1.png');
const a2 = imageBytes('img_a2.jpg');

let dir: string;
let files: ConvertResult;
let model: PaliGemma;
let log: NativeCall[];
let onCall: RecordedModel['onCall'];
const servers: PaliGemmaServer[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-serve-batch-'));
  files = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f32' });
  // One layer per prefill chunk: a prompt of the tiny model takes two chunks.
  ({ model, log, onCall } = await recordedModel(files, { maxSequences: 8, prefillChunkLayers: 1, imageCacheBytes: 0 }));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close({ graceMs: 0 })));
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function start(options: ServerOptions = {}): Promise<{ server: PaliGemmaServer; base: string; client: Ollama }> {
  const server = createServer(model, { name: NAME, ...options });
  servers.push(server);
  const { port } = await server.listen(0);
  const base = `http://127.0.0.1:${port}`;
  return { server, base, client: new Ollama({ host: base }) };
}

/** Waits until `check` holds (polling), or fails after `ms`. */
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A raw streaming generate request; resolves when the response starts. */
async function stream(base: string, numPredict: number, signal: AbortSignal): Promise<Response> {
  return fetch(`${base}/api/generate`, {
    method: 'POST',
    body: JSON.stringify({ model: NAME, prompt: 'caption en', images: [a1.toString('base64')], options: { num_predict: numPredict } }),
    signal,
  });
}

/** Reads `n` NDJSON chunks of a streamed response. */
async function readChunks(res: Response, n: number): Promise<void> {
  const reader = res.body!.getReader();
  let lines = 0;
  while (lines < n) {
    const { value, done } = await reader.read();
    if (done) throw new Error('the stream ended early');
    lines += new TextDecoder().decode(value).split('\n').filter(Boolean).length;
  }
  reader.releaseLock();
}

describe('the server on the step scheduler', () => {
  it('concurrent requests share decode steps; each gets the answer it gets alone', async () => {
    const { server, client } = await start();
    // The model's sequences are the default parallelism: every admitted request can generate.
    expect(server.load.parallel).toBe(8);
    const cases = ['a1_caption', 'a2_answer', 'a1_detect', 'a2_answer_fr'].map(golden);
    const from = log.length;
    const answers = await Promise.all(
      cases.map((c) =>
        client.generate({ model: NAME, prompt: c.prompt, raw: true, images: [imageBytes(c.image)], stream: false, options: { num_predict: c.generated_ids.length } }),
      ),
    );
    answers.forEach((r, i) => expect(r.response, cases[i]!.name).toBe(model.tokenizer.decode(cases[i]!.generated_ids)));
    const steps = decodes(log.slice(from));
    expect(Math.max(...steps.map((d) => d.sequences.length))).toBe(cases.length);
  });

  it('a request whose KV cache would exceed the limit is refused: 503 + Retry-After with others, 400 alone', async () => {
    const perPosition = model.kvBytesPerPosition;
    const prompt = model.imageTokens + 1 + model.tokenizer.encode('caption en\n', { addBos: false }).length;
    const { server, base } = await start({ maxKvBytes: Math.floor((prompt + 200) * perPosition * 1.5) });
    const running = new AbortController();
    const first = await stream(base, 200, running.signal);
    await readChunks(first, 1);
    expect(server.load.kvBytes).toBe((prompt + 200) * perPosition);

    const post = (numPredict: number) =>
      fetch(`${base}/api/generate`, {
        method: 'POST',
        body: JSON.stringify({ model: NAME, prompt: 'caption en', images: [a1.toString('base64')], stream: false, options: { num_predict: numPredict } }),
      });
    const busy = await post(200);
    expect(busy.status).toBe(503);
    expect(Number(busy.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await busy.json()) as { error: string }).error).toMatch(/the server is busy: the 1 requests running and waiting may fill .* of KV cache/);
    const tooLarge = await post(400);
    expect(tooLarge.status).toBe(400);
    expect(((await tooLarge.json()) as { error: string }).error).toMatch(/may fill .* of KV cache .*more than the server's limit/);

    running.abort();
    await until(() => server.load.running === 0 && model.sequences.active === 0);
    expect(server.load.kvBytes).toBe(0);
    const fits = await post(10);
    expect(fits.status).toBe(200);
  });

  it('an image that cannot be decoded is refused before it waits for a slot', async () => {
    const { server, base } = await start({ parallel: 1, maxQueue: 0 });
    const running = new AbortController();
    await readChunks(await stream(base, 3000, running.signal), 1);
    const bad = await fetch(`${base}/api/generate`, {
      method: 'POST',
      body: JSON.stringify({ model: NAME, prompt: 'caption en', images: [Buffer.from('not an image').toString('base64')], stream: false }),
    });
    // Not 503 (full): the image's header is read before admission.
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/^image: /);
    running.abort();
    await until(() => server.load.running === 0 && model.sequences.active === 0);
  });

  it('a client that disconnects mid-stream frees its sequence at once', async () => {
    const { server, base } = await start();
    const client = new AbortController();
    const from = log.length;
    const res = await stream(base, 3000, client.signal);
    await readChunks(res, 3);
    client.abort();
    // It leaves at once; its KV cache is freed as the native call in flight (if any) returns.
    await until(() => model.sequences.active === 0 && server.load.running === 0);
    await until(() => log.slice(from).some((c) => c.method === 'releaseSequence'));
    const calls = log.slice(from);
    const released = calls.findIndex((c) => c.method === 'releaseSequence');
    expect(released).toBeGreaterThan(0);
    const seq = calls[released]!.sequences[0]!;
    expect(calls.slice(released + 1).filter((c) => c.sequences.includes(seq))).toEqual([]);
    expect(model.sequences.kvBytes).toBe(0);
  });

  it('a client that disconnects during a chunked prefill: the prefill goes no further, the sequence is freed', async () => {
    const { server, base } = await start();
    const client = new AbortController();
    const from = log.length;
    // The first prefill chunk waits until the server has seen the client go (its sequence left).
    onCall.fn = async (call) => {
      if (call.method !== 'prefill') return;
      onCall.fn = undefined;
      client.abort();
      await until(() => model.sequences.active === 0);
    };
    await expect(stream(base, 3000, client.signal)).rejects.toThrow(/abort/i);
    await until(() => server.load.running === 0);
    await until(() => log.slice(from).some((c) => c.method === 'releaseSequence'));
    expect(log.slice(from).map(short).filter((c) => !c.startsWith('encodeImages'))).toEqual(['prefill 0', 'releaseSequence 0']);
  });

  it('/api/ps reports the sequences generating and the KV cache they hold', async () => {
    const { base } = await start();
    const client = new AbortController();
    const res = await stream(base, 3000, client.signal);
    await readChunks(res, 2);
    const ps = (await (await fetch(`${base}/api/ps`)).json()) as {
      models: { size: number; paligemma: { sequences: PaliGemma['sequences']; requests: { running: number } } }[];
    };
    client.abort();
    const [m] = ps.models;
    expect(m!.paligemma.sequences).toMatchObject({ active: 1, queued: 0, maxSequences: 8 });
    expect(m!.paligemma.sequences.kvBytes).toBeGreaterThan(0);
    expect(m!.paligemma.sequences.kvBytes % model.kvBytesPerPosition).toBe(0);
    expect(m!.paligemma.requests.running).toBe(1);
    expect(m!.size).toBe(model.files.text.gguf.fileSize + model.files.projector!.gguf.fileSize + m!.paligemma.sequences.kvBytes);
    await until(() => model.sequences.active === 0);
  });
});

describe('paligemma serve (CLI)', () => {
  it('--parallel is the sequences generating at once, --max-kv-mb the KV limit', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'lib/cli/main.ts', 'serve', '--model', files.textPath, '--projector', files.projectorPath, '--port', '0', '--parallel', '3', '--max-kv-mb', '0.5', '--quiet'],
      { cwd: projectRoot },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    try {
      await until(() => /on http:\/\/127\.0\.0\.1:\d+/.test(stderr), 60_000);
      const base = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)![1]!;
      const ps = (await (await fetch(`${base}/api/ps`)).json()) as {
        models: { paligemma: { sequences: PaliGemma['sequences']; requests: { maxKvBytes: number } } }[];
      };
      expect(ps.models[0]!.paligemma.sequences.maxSequences).toBe(3);
      expect(ps.models[0]!.paligemma.requests.maxKvBytes).toBe(512 * 1024);
      // As many tokens as fit the context (2048 positions × 384 bytes) cannot fit 0.5 MB alone.
      const tooLarge = await fetch(`${base}/api/generate`, {
        method: 'POST',
        body: JSON.stringify({ model: path.basename(files.textPath, '.gguf'), prompt: 'caption en', images: [a2.toString('base64')], stream: false, options: { num_predict: -1 } }),
      });
      expect(tooLarge.status).toBe(400);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
