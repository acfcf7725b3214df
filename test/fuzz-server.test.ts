/**
 * The server's request parsing under malformed input: thousands of requests, each broken in at
 * least one way — not JSON, not an object, a field of the wrong type or out of range, an image that
 * is not base64 or not an image, an unknown model, a feature PaliGemma cannot honour, the wrong
 * method or path — sent to every route of an in-process server on the tiny model. Every answer must
 * be a JSON error with a 4xx status in the route's API shape, and the server must stay up (a last
 * valid request still works). Seeded, so a failure replays.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { convertCheckpoint } from '../lib/convert/index.js';
import { loadModel, type PaliGemma } from '../lib/model/paligemma.js';
import { seededRandom } from '../lib/model/sampling.js';
import { createServer, type PaliGemmaServer } from '../lib/server/index.js';
import { FIXTURE_DIR, imageBytes } from './helpers/golden.js';

let dir: string;
let model: PaliGemma;
let server: PaliGemmaServer;
let port: number;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-fuzz-server-'));
  const files = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f32' });
  model = await loadModel({ model: files.textPath, projector: files.projectorPath });
  server = createServer(model, { name: 'tiny', maxBodyBytes: 1 << 20, parallel: 2 });
  port = (await server.listen(0, '127.0.0.1')).port;
});
afterAll(async () => {
  await server?.close({ graceMs: 0 });
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  type: string;
  body: string;
}

function request(method: string, route: string, body?: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // Content-Length always: a DELETE or GET body is otherwise sent without one, and the server reads
    // it as the start of the next request on the kept-alive connection.
    const length = body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(body)) };
    const req = http.request({ host: '127.0.0.1', port, method, path: route, headers: { 'Content-Type': 'application/json', ...length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const random = seededRandom(16);
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
const png = imageBytes('img_a1.png').toString('base64');

/**
 * Sets `value` at `keys` in `b`, making each level on the way an object (or the first message) if an
 * earlier break left something else there: the break then replaces that one, and is itself enough.
 */
function setIn(b: Record<string, unknown>, keys: (string | number)[], value: unknown): void {
  let at: Record<string | number, unknown> = b;
  for (const key of keys.slice(0, -1)) {
    const next = at[key];
    if (typeof next !== 'object' || next === null) at[key] = typeof keys[keys.indexOf(key) + 1] === 'number' ? [] : {};
    at = at[key] as Record<string | number, unknown>;
  }
  at[keys.at(-1)!] = value;
}

/** Values that are not of the field's type (or out of its range). */
const WRONG: Record<string, unknown[]> = {
  string: [42, true, [], {}, ['a'], 1.5],
  boolean: ['yes', 1, 0, [], {}, 'true'],
  object: ['x', 3, [], true, [1, 2]],
  array: ['x', 3, {}, true],
  image: ['', 'not base64!', 'abc', '====', 'data:image/png,rawbytes', 'data:image/png;base64,@@@@', Buffer.from('not an image at all').toString('base64'), 7, {}],
  imageUrl: ['https://example.com/cat.png', 'file:///etc/passwd', 'data:text/plain,hello', 3, {}, 'data:image/png;base64,####'],
};
const INVALID_NUMBER: Record<string, unknown[]> = {
  num_predict: [0, -3, 1.5, '10', true, 1e400],
  temperature: [-1, '0.5', [], 1e400],
  top_k: [-1, 2.5, 'x'],
  top_p: [-0.1, 1.5, 'x'],
  seed: [0.5, 'x', {}],
  max_tokens: [0, -5, 1.5, 'x'],
  n: [0, 2, 1.5, 'x'],
  openaiTemperature: [2.5, -1, 'x'],
};

/** A valid request body of each POST route, and the ways to break it (each one enough on its own). */
const ROUTES: Record<string, { valid: () => Record<string, unknown>; breaks: ((b: Record<string, unknown>) => void)[] }> = {
  '/api/generate': {
    valid: () => ({ model: 'tiny', prompt: 'caption en', images: [png], stream: false, options: { num_predict: 2 } }),
    breaks: [
      (b) => (b.model = pick([...WRONG.string!, 'other-model', ''])),
      (b) => delete b.model,
      (b) => (b.prompt = pick(WRONG.string!)),
      (b) => (b.images = pick(WRONG.array!)),
      (b) => (b.images = [pick(WRONG.image!)]),
      (b) => (b.images = [png, png]),
      (b) => (b.stream = pick(WRONG.boolean!)),
      (b) => (b.raw = pick(WRONG.boolean!)),
      (b) => (b.options = pick(WRONG.object!)),
      (b) => setIn(b, ['options', 'num_predict'], pick(INVALID_NUMBER.num_predict!)),
      (b) => setIn(b, ['options', 'temperature'], pick(INVALID_NUMBER.temperature!)),
      (b) => setIn(b, ['options', 'top_k'], pick(INVALID_NUMBER.top_k!)),
      (b) => setIn(b, ['options', 'top_p'], pick(INVALID_NUMBER.top_p!)),
      (b) => setIn(b, ['options', 'seed'], pick(INVALID_NUMBER.seed!)),
      (b) => setIn(b, ['options', 'stop'], pick([3, [1], Array(17).fill('x'), {}])),
      (b) => (b[pick(['format', 'tools', 'think', 'suffix', 'context'])] = pick(['json', [1], true, 'x'])),
    ],
  },
  '/api/chat': {
    valid: () => ({ model: 'tiny', messages: [{ role: 'user', content: 'what is this?', images: [png] }], stream: false, options: { num_predict: 2 } }),
    breaks: [
      (b) => (b.model = pick([...WRONG.string!, 'other-model'])),
      (b) => (b.messages = pick(WRONG.array!)),
      (b) => (b.messages = [pick(['x', 3, null, [], true])]),
      (b) => setIn(b, ['messages', 0, 'role'], pick([...WRONG.string!, 'assistant', 'system'])),
      (b) => setIn(b, ['messages', 0], { content: 'x', images: [png] }),
      (b) => setIn(b, ['messages', 0, 'content'], pick(WRONG.string!)),
      (b) => setIn(b, ['messages', 0, 'images'], pick([...WRONG.array!, [], [png, png]])),
      (b) => setIn(b, ['messages', 0, 'images'], [pick(WRONG.image!)]),
      (b) => (b.stream = pick(WRONG.boolean!)),
      (b) => setIn(b, ['options', 'num_predict'], pick(INVALID_NUMBER.num_predict!)),
      (b) => (b[pick(['format', 'tools', 'think'])] = pick(['json', [1], true])),
    ],
  },
  '/api/show': {
    valid: () => ({ model: 'tiny' }),
    breaks: [(b) => (b.model = pick([...WRONG.string!, 'other-model', '']))],
  },
  '/v1/chat/completions': {
    valid: () => ({
      model: 'tiny',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }],
      max_tokens: 2,
    }),
    breaks: [
      (b) => (b.model = pick([...WRONG.string!, 'other-model'])),
      (b) => delete b.model,
      (b) => (b.messages = pick([...WRONG.array!, []])),
      (b) => delete b.messages,
      (b) => setIn(b, ['messages', 0, 'content'], pick([3, true, {}, [{ type: 'audio' }], [{ type: 'text', text: 5 }]])),
      (b) => setIn(b, ['messages', 0, 'content'], [{ type: 'image_url', image_url: { url: pick(WRONG.imageUrl!) } }]),
      (b) => setIn(b, ['messages', 0, 'role'], pick([...WRONG.string!, 'assistant'])),
      (b) => setIn(b, ['messages', 0, 'content'], 'no image here'),
      (b) => (b.n = pick(INVALID_NUMBER.n!)),
      (b) => (b.max_tokens = pick(INVALID_NUMBER.max_tokens!)),
      (b) => (b.temperature = pick(INVALID_NUMBER.openaiTemperature!)),
      (b) => (b.top_p = pick(INVALID_NUMBER.top_p!)),
      (b) => (b.seed = pick(INVALID_NUMBER.seed!)),
      (b) => (b.stop = pick([3, [1], Array(5).fill('x'), {}])),
      (b) => (b.stream = pick(WRONG.boolean!)),
      (b) => (b.response_format = pick([{ type: 'json_object' }, 'json', 3])),
      (b) => (b[pick(['tools', 'logprobs'])] = pick([[1], true, 'x'])),
    ],
  },
};

/** Bodies that are not a JSON object at all. */
function notAnObject(): string | Buffer {
  switch (Math.floor(random() * 7)) {
    case 0:
      return Buffer.from(Array.from({ length: 1 + Math.floor(random() * 200) }, () => Math.floor(random() * 256)));
    case 1:
      return JSON.stringify(pick([1, 'x', null, true, [1, 2], []]));
    case 2: {
      const text = JSON.stringify(ROUTES['/api/generate']!.valid());
      return text.slice(0, Math.floor(random() * (text.length - 1)));
    }
    case 3:
      return '{"model": "tiny", "prompt": ' + '['.repeat(5000);
    case 4:
      return '';
    case 5:
      return `{"model": "${'x'.repeat(1 << 20)}"}`; // over the server's 1 MiB body limit: 413
    default:
      return '\u0000\uffff{}'.repeat(1 + Math.floor(random() * 10));
  }
}

/** The answer must be an error of the route's API, with a 4xx status. */
function expectClientError(a: Answer, route: string, what: string): void {
  expect(a.status, `${what}: ${a.body}`).toBeGreaterThanOrEqual(400);
  expect(a.status, `${what}: ${a.body}`).toBeLessThan(500);
  expect(a.type, what).toMatch(/^application\/json/);
  const body = JSON.parse(a.body) as { error?: unknown };
  if (route.startsWith('/v1/')) expect(body.error, what).toMatchObject({ message: expect.any(String), type: 'invalid_request_error' });
  else expect(body.error, what).toEqual(expect.any(String));
}

describe('malformed requests to every route', () => {
  it.each(Object.keys(ROUTES))('POST %s: 150 broken bodies, each a 4xx JSON error', async (route) => {
    const { valid, breaks } = ROUTES[route]!;
    for (let i = 0; i < 150; i++) {
      let body: string | Buffer;
      let what: string;
      if (i % 5 === 4) {
        body = notAnObject();
        what = `#${i} not an object: ${String(body).slice(0, 80)}`;
      } else {
        const b = valid();
        const count = 1 + Math.floor(random() * 3);
        for (let j = 0; j < count; j++) pick(breaks)(b);
        body = JSON.stringify(b);
        what = `#${i} ${body.slice(0, 300)}`;
      }
      expectClientError(await request('POST', route, body), route, what);
    }
  });

  it('wrong methods and paths: 404/405 JSON errors; the server still answers a valid request', async () => {
    const paths = ['/api/generate', '/api/chat', '/api/tags', '/api/show', '/api/ps', '/api/version', '/v1/chat/completions', '/v1/models', '/v1/models/tiny'];
    for (let i = 0; i < 60; i++) {
      const route = random() < 0.5 ? pick(paths) : pick(['/api/', '/api/generate/x', '/v2/chat', '/v1/models/', '/%ff', '/api/pull', '/..//api/tags']);
      const method = pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'GET', 'POST']);
      const a = await request(method, route, method === 'GET' ? undefined : '{}');
      if (a.status < 400) continue; // a valid method on a valid path (GET /api/tags…)
      expectClientError(a, route, `${method} ${route}`);
    }
    const generation = await request('POST', '/api/generate', JSON.stringify(ROUTES['/api/generate']!.valid()));
    expect(generation.status, generation.body).toBe(200);
    expect(JSON.parse(generation.body)).toMatchObject({ model: 'tiny', done: true });
  });
});
