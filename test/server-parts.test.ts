/**
 * The server's and worker's pure parts, without a model: stop sequences, prompt templating, image
 * decoding, the chat turn, admission control, structured task results, job payload checks and
 * Redis URLs.
 */
import { describe, expect, it } from 'vitest';

import { Admission } from '../lib/server/admission.js';
import { HttpError } from '../lib/server/http.js';
import { chatTurn, decodeBase64, decodeImage, decodeImageUrl, paligemmaPrompt, type ChatMessage } from '../lib/server/input.js';
import { StopMatcher } from '../lib/server/stop.js';
import { taskResult } from '../lib/server/task-result.js';
import { decodeSegmentation, SegmentationDecoder } from '../lib/tasks/segmentation.js';
import { parseDetections } from '../lib/tasks/parse.js';
import { checkJobData, JobDataError, jobImage } from '../lib/worker/job.js';
import { enqueueDescribe } from '../lib/worker/producer.js';
import { MissingDependencyError } from '../lib/worker/errors.js';
import { importOptional } from '../lib/worker/optional.js';
import { redisConnection } from '../lib/worker/worker.js';
import { randomVae } from './helpers/vae.js';

/** Feeds pieces through a matcher; returns what was emitted and whether it stopped. */
function runStops(stops: string[], pieces: string[]): { text: string; stopped: boolean } {
  const m = new StopMatcher(stops);
  let text = '';
  for (const p of pieces) {
    text += m.push(p);
    if (m.stopped) break;
  }
  if (!m.stopped) text += m.flush();
  return { text, stopped: m.stopped };
}

describe('StopMatcher', () => {
  it('cuts before the earliest stop sequence, across piece boundaries', () => {
    expect(runStops(['END'], ['hello E', 'N', 'D more'])).toEqual({ text: 'hello ', stopped: true });
    expect(runStops(['b', 'xyz'], ['axy', 'zb'])).toEqual({ text: 'a', stopped: true });
    expect(runStops(['\n'], ['one line\nsecond'])).toEqual({ text: 'one line', stopped: true });
  });

  it('lets everything through, in order, when no stop sequence appears', () => {
    expect(runStops(['END'], ['E', 'N', 'x', 'EN'])).toEqual({ text: 'ENxEN', stopped: false });
    expect(runStops([], ['a', 'b'])).toEqual({ text: 'ab', stopped: false });
    expect(runStops([''], ['a', 'b'])).toEqual({ text: 'ab', stopped: false }); // empty stops mean nothing
  });

  it('holds back only a tail that could begin a stop sequence', () => {
    const m = new StopMatcher(['abc']);
    expect(m.push('xxab')).toBe('xx');
    expect(m.push('x')).toBe('abx');
    expect(m.push('a')).toBe('');
    expect(m.flush()).toBe('a');
  });
});

describe('paligemmaPrompt', () => {
  it('passes PaliGemma task prefixes through and asks anything else as a question', () => {
    for (const p of ['caption en', 'describe de', 'cap pt-BR', 'ocr', 'answer en what is this?', 'question fr un chat', 'detect cat ; dog', 'segment car']) {
      expect(paligemmaPrompt(p)).toBe(p);
    }
    expect(paligemmaPrompt('What is in the image?')).toBe('answer en What is in the image?');
    expect(paligemmaPrompt('describe the image please')).toBe('answer en describe the image please');
    expect(paligemmaPrompt('  how many\n cats? ')).toBe('answer en how many cats?');
    expect(paligemmaPrompt('')).toBe('caption en');
    expect(paligemmaPrompt('  \n')).toBe('caption en');
  });

  it('leaves raw prompts alone', () => {
    expect(paligemmaPrompt('What is this?', true)).toBe('What is this?');
  });
});

describe('image decoding', () => {
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
  const b64 = png.toString('base64');

  it('decodes strict base64, data URLs, and ignores line breaks', () => {
    expect(decodeBase64(b64, 'x')).toEqual(png);
    expect(decodeImage(`data:image/png;base64,${b64}`, 'x')).toEqual(png);
    expect(decodeImage(`${b64.slice(0, 4)}\n${b64.slice(4)}`, 'x')).toEqual(png);
    expect(decodeImageUrl(`data:image/png;base64,${b64}`, 'x')).toEqual(png);
  });

  it('refuses what is not base64 with a 400 naming the field', () => {
    const cases: [unknown, RegExp][] = [
      ['abc', /images\[0\] is not valid base64/],
      ['ab$=', /not valid base64/],
      ['', /images\[0\] is empty/],
      [42, /must be a base64 string, got number/],
      ['data:image/png,rawbytes', /without ;base64/],
    ];
    for (const [value, message] of cases) {
      const err = catchError(() => decodeImage(value, 'images[0]'));
      expect(err).toBeInstanceOf(HttpError);
      expect((err as HttpError).status).toBe(400);
      expect((err as Error).message).toMatch(message);
    }
    expect(() => decodeImageUrl('https://example.com/cat.jpg', 'url')).toThrow(/does not fetch remote images/);
  });
});

describe('chatTurn', () => {
  const img = (s: string) => Buffer.from(s);
  const decode = (v: unknown) => v as Buffer;
  const msg = (role: string, text: string, images: unknown[] = [], i = 0): ChatMessage => ({ role, text, images, where: `messages[${i}]` });

  it('answers the last user message about its image, or the latest earlier image', () => {
    expect(chatTurn([msg('user', 'hi', [img('a')])], decode)).toEqual({ text: 'hi', image: img('a') });
    const history = [msg('system', 'be nice'), msg('user', 'first', [img('a')]), msg('assistant', 'ok'), msg('user', 'and?')];
    expect(chatTurn(history, decode)).toEqual({ text: 'and?', image: img('a') });
    const newer = [msg('user', 'first', [img('a')]), msg('assistant', 'ok'), msg('user', 'this one', [img('b')])];
    expect(chatTurn(newer, decode).image).toEqual(img('b'));
  });

  it('says what it refuses and why', () => {
    expect(() => chatTurn([msg('user', 'x', [img('a')]), msg('assistant', 'y')], decode)).toThrow(/last message must be the user's.*"assistant"/);
    expect(() => chatTurn([msg('user', 'no image')], decode)).toThrow(/attach one image/);
    expect(() => chatTurn([msg('user', 'two', [img('a'), img('b')], 3)], decode)).toThrow(/one image per prompt; messages\[3\] has 2 images/);
  });
});

describe('Admission', () => {
  it('admits up to `parallel`, queues up to `maxQueue`, refuses the rest with 503 and Retry-After', async () => {
    const a = new Admission(2, 1);
    const signal = new AbortController().signal;
    const r1 = await a.acquire(signal);
    await a.acquire(signal);
    let admitted = false;
    const third = a.acquire(signal).then((release) => {
      admitted = true;
      return release;
    });
    expect([a.running, a.waiting]).toEqual([2, 1]);
    const refused = await a.acquire(signal).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HttpError);
    expect((refused as HttpError).status).toBe(503);
    expect(Number((refused as HttpError).headers['Retry-After'])).toBeGreaterThanOrEqual(1);
    expect(admitted).toBe(false);
    r1();
    r1(); // a second release of the same slot changes nothing
    (await third)();
    expect(admitted).toBe(true);
    expect([a.running, a.waiting]).toEqual([1, 0]);
  });

  it('drops a waiter whose client left, and refuses everyone once closed', async () => {
    const a = new Admission(1, 5);
    const release = await a.acquire(new AbortController().signal);
    const gone = new AbortController();
    const waiting = a.acquire(gone.signal);
    gone.abort(new Error('client left'));
    await expect(waiting).rejects.toThrow('client left');
    expect(a.waiting).toBe(0);
    const queued = a.acquire(new AbortController().signal);
    a.close(new HttpError(503, 'shutting down'));
    await expect(queued).rejects.toThrow('shutting down');
    await expect(a.acquire(new AbortController().signal)).rejects.toThrow('shutting down');
    release();
    expect(a.running).toBe(0);
  });
});

describe('Admission with a KV-cache limit', () => {
  it('counts what running and waiting requests may fill: 503 beyond the limit, 400 alone; a leaver frees its share', async () => {
    const a = new Admission(1, 5, 100);
    const release = await a.acquire(new AbortController().signal, 40);
    const gone = new AbortController();
    const waiting = a.acquire(gone.signal, 40);
    expect(a.kvBytes).toBe(80);
    const busy = (await a.acquire(new AbortController().signal, 30).catch((e: unknown) => e)) as HttpError;
    expect(busy.status).toBe(503);
    expect(Number(busy.headers['Retry-After'])).toBeGreaterThanOrEqual(1);
    expect(busy.message).toMatch(/KV cache/);
    const alone = (await a.acquire(new AbortController().signal, 101).catch((e: unknown) => e)) as HttpError;
    expect(alone.status).toBe(400);
    gone.abort(new Error('left'));
    await expect(waiting).rejects.toThrow('left');
    expect(a.kvBytes).toBe(40);
    const next = a.acquire(new AbortController().signal, 60); // fits beside the running one: waits for the slot only
    expect(a.kvBytes).toBe(100);
    release();
    (await next)();
    expect([a.running, a.waiting, a.kvBytes]).toEqual([0, 0, 0]);
  });
});

describe('taskResult', () => {
  const size = { width: 200, height: 100 };
  const segText = '<loc0256><loc0100><loc0768><loc0900>' + Array.from({ length: 16 }, (_, i) => `<seg${String(i * 7).padStart(3, '0')}>`).join('') + ' cat';

  it('parses detect output and leaves other prompts alone', async () => {
    const text = '<loc0000><loc0512><loc1023><loc1023> cat ; junk';
    expect(await taskResult('detect cat', text, size, undefined)).toEqual({ task: 'detect', image: size, ...parseDetections(text, size) });
    expect(await taskResult('caption en', text, size, undefined)).toBeUndefined();
  });

  it('gives segment boxes and codes without a decoder, and run-length masks with one', async () => {
    const bare = await taskResult('segment cat', segText, size, undefined);
    expect(bare?.segments?.[0]).toMatchObject({ label: 'cat', codes: Array.from({ length: 16 }, (_, i) => i * 7) });
    expect(bare?.segments?.[0]?.mask).toBeUndefined();

    const decoder = SegmentationDecoder.fromTensors(randomVae({ codes: 128, dim: 16, width: 8, upsample: [8, 8, 8, 4] }, 5));
    const r = await taskResult('segment cat', segText, size, decoder);
    const [expected] = (await decodeSegmentation(segText, size, decoder)).segments;
    const seg = r!.segments![0]!;
    const counts = seg.mask!.counts;
    expect(counts.reduce((a, b) => a + b, 0)).toBe(size.width * size.height);
    // Expand the runs again and compare with the decoder's own mask.
    const mask = new Uint8Array(size.width * size.height);
    let at = 0;
    counts.forEach((n, i) => {
      if (i % 2 === 1) mask.fill(1, at, at + n);
      at += n;
    });
    expect(mask).toEqual(expected!.mask);
    expect(seg.area).toBe(expected!.mask.reduce((a, b) => a + b, 0));
  });
});

describe('describe jobs', () => {
  it('checks payloads and names what is wrong', async () => {
    expect(checkJobData({ image: 'AAAA' })).toEqual({ image: 'AAAA', prompt: 'caption en', options: {} });
    expect(checkJobData({ image: { path: '/x.jpg' }, prompt: 'ocr', options: { maxTokens: 5 }, userId: 7 }).prompt).toBe('ocr');
    const bad: [unknown, RegExp][] = [
      [null, /must be an object/],
      [{}, /image must be a base64 string or \{ path \}/],
      [{ image: { path: '' } }, /image.path is empty/],
      [{ image: 'AAAA', prompt: 3 }, /prompt must be a non-empty string/],
      [{ image: 'AAAA', options: { max_tokens: 5 } }, /options.max_tokens is not a job option/],
    ];
    for (const [data, message] of bad) expect(() => checkJobData(data)).toThrow(message);
    await expect(jobImage('not base64!')).rejects.toThrow(JobDataError);
    await expect(jobImage({ path: '/nonexistent/cat.jpg' })).rejects.toThrow(/no such file on this worker/);
    await expect(jobImage({ path: '/tmp' })).rejects.toThrow(/is not a file/);
  });

  it('enqueueDescribe sends bytes as base64 and refuses bad payloads before they reach the queue', async () => {
    const added: unknown[] = [];
    const queue = { add: async (name: string, data: unknown, opts?: unknown) => (added.push({ name, data, opts }), 'job-1') };
    expect(await enqueueDescribe(queue, { image: new Uint8Array([1, 2, 3]), prompt: 'ocr' }, { attempts: 2 })).toBe('job-1');
    expect(added).toEqual([{ name: 'describe', data: { image: 'AQID', prompt: 'ocr' }, opts: { attempts: 2 } }]);
    await expect(enqueueDescribe(queue, { image: 'AQID', options: { steps: 3 } as never })).rejects.toThrow(/options.steps/);
    expect(added).toHaveLength(1);
  });

  it('a missing optional package is an error that says what to install', async () => {
    const err = await importOptional('paligemma-no-such-package', 'the test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingDependencyError);
    expect((err as Error).message).toBe('the test needs the paligemma-no-such-package package, which is not installed; run: npm install paligemma-no-such-package');
  });

  it('reads Redis URLs', () => {
    expect(redisConnection('redis://127.0.0.1:6390')).toEqual({ host: '127.0.0.1', port: 6390 });
    expect(redisConnection('rediss://u:p%40ss@cache.example:7000/2')).toEqual({ host: 'cache.example', port: 7000, username: 'u', password: 'p@ss', db: 2, tls: {} });
    expect(redisConnection('redis://[::1]')).toEqual({ host: '::1', port: 6379 });
    expect(() => redisConnection('localhost:6379')).toThrow(/redis:\/\//);
    expect(() => redisConnection('redis://h/db')).toThrow(/must be a number/);
  });
});

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}
