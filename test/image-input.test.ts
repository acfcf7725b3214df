/**
 * Images as people hold them: every accepted form decodes to exactly the pixels of the same bytes
 * given as a Buffer, and every refused form fails with its own ImageError code and a message that
 * says what to do. Files are real files in a temporary directory, including a FIFO and a directory.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { decodeImage, ImageError, MAX_IMAGE_BYTES, preprocess, type ImageErrorCode, type ImageInput, type RgbImage } from '../lib/image/index.js';

let dir: string;
let png: Buffer;
let file: string;
let expected: RgbImage;

/** A small PNG whose length is a multiple of 8, so every typed array can view it exactly. */
async function pngOfLengthMultipleOf8(): Promise<Buffer> {
  for (let size = 3; size < 40; size++) {
    for (const [width, height] of [[size, size + 1], [size + 1, size]]) {
      const data = Buffer.from(Array.from({ length: width * height * 3 }, (_, i) => (i * 37 + width) % 256));
      const bytes = await sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
      if (bytes.length % 8 === 0) return bytes;
    }
  }
  throw new Error('no PNG of a length divisible by 8 found');
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'paligemma-image-input-'));
  png = await pngOfLengthMultipleOf8();
  file = path.join(dir, 'photo.png');
  writeFileSync(file, png);
  expected = await decodeImage(png);
  expect(expected.width).toBeGreaterThanOrEqual(3);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function fails(input: unknown, code: ImageErrorCode, message?: RegExp): Promise<ImageError> {
  const err = await decodeImage(input as ImageInput).then(() => undefined, (e: unknown) => e);
  expect(err, `${String(input).slice(0, 60)} should fail with ${code}`).toBeInstanceOf(ImageError);
  expect((err as ImageError).code, (err as Error).message).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
  return err as ImageError;
}

/** `png` copied into a fresh buffer after `offset` bytes of junk, so views with a byte offset are exercised. */
function atOffset(offset: number): ArrayBuffer {
  const buffer = new ArrayBuffer(offset + png.length + 8);
  new Uint8Array(buffer).fill(0xee);
  new Uint8Array(buffer, offset).set(png);
  return buffer;
}

describe('accepted forms decode to the same pixels as a Buffer', () => {
  it('a path (absolute and relative), a file: URL string and a URL object', async () => {
    const relative = path.relative(process.cwd(), file);
    for (const input of [file, relative, pathToFileURL(file).href, pathToFileURL(file)]) {
      expect(await decodeImage(input), String(input)).toEqual(expected);
    }
  });

  it('an ArrayBuffer, a SharedArrayBuffer and an ArrayBuffer from another realm', async () => {
    const exact = atOffset(0).slice(0, png.length);
    const shared = new SharedArrayBuffer(png.length);
    new Uint8Array(shared).set(png);
    const foreign = vm.runInNewContext(`new ArrayBuffer(${png.length})`) as ArrayBuffer;
    expect(foreign instanceof ArrayBuffer).toBe(false); // really another realm's class
    new Uint8Array(foreign).set(png);
    for (const input of [exact, shared, foreign]) expect(await decodeImage(input)).toEqual(expected);
  });

  it('every typed array and DataView, viewing the bytes at a byte offset', async () => {
    const views = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array];
    for (const View of views) {
      const view = new View(atOffset(16), 16, png.length / View.BYTES_PER_ELEMENT);
      expect(await decodeImage(view), View.name).toEqual(expected);
    }
    expect(await decodeImage(new DataView(atOffset(5), 5, png.length))).toEqual(expected);
    expect(await decodeImage(Buffer.from(atOffset(3), 3, png.length))).toEqual(expected);
  });

  it('a Blob and a base64 data: URL (line breaks allowed, as MIME wraps it)', async () => {
    const base64 = png.toString('base64');
    const wrapped = base64.replace(/(.{76})/g, '$1\n');
    for (const input of [new Blob([png]), `data:image/png;base64,${base64}`, `data:;base64,${wrapped}`, `DATA:image/png;BASE64,${base64}`]) {
      expect(await decodeImage(input)).toEqual(expected);
    }
  });

  it('preprocess takes the same forms', async () => {
    const fromBuffer = await preprocess(png, { size: 16 });
    expect(await preprocess(pathToFileURL(file), { size: 16 })).toEqual(fromBuffer);
  });
});

describe('refused forms say what is wrong and what to do', () => {
  it('http(s) URLs are never fetched: UNSUPPORTED_URL, with how to fetch it yourself', async () => {
    for (const url of ['https://example.com/cat.jpg', 'HTTP://example.com/cat.jpg', new URL('https://example.com/cat.jpg')]) {
      await fails(url, 'UNSUPPORTED_URL', /does not download images.*fetch/s);
    }
    await fails('ftp://example.com/cat.jpg', 'UNSUPPORTED_URL', /"ftp:"/);
  });

  it('malformed data: URLs → BAD_INPUT', async () => {
    await fails('data:image/png,%89PNG', 'BAD_INPUT', /base64-encoded/);
    await fails('data:image/png;base64', 'BAD_INPUT', /base64-encoded/);
    await fails('data:image/png;base64,iVBOR!!w0K', 'BAD_INPUT', /not base64/);
    await fails(`data:image/png;base64,${'A'.repeat(5000)}`, 'UNSUPPORTED_FORMAT'); // valid base64, not an image
  });

  it('a missing path → NOT_FOUND naming it, with hints for ~ and for base64 given as a path', async () => {
    await fails(path.join(dir, 'nope.jpg'), 'NOT_FOUND', new RegExp(`nope\\.jpg: no such file`));
    await fails('~/photo.jpg', 'NOT_FOUND', /~ is not expanded/);
    await fails(png.toString('base64'), 'NOT_FOUND', /prefix it with data:image/);
    await fails(pathToFileURL(path.join(dir, 'nope.jpg')), 'NOT_FOUND');
    await fails('', 'BAD_INPUT', /empty string/);
  });

  it('a directory, a FIFO and a device → NOT_A_FILE in plain words, without waiting for a FIFO writer', async () => {
    const sub = path.join(dir, 'album');
    mkdirSync(sub);
    await fails(sub, 'NOT_A_FILE', /is a directory, not an image file/);
    await fails(pathToFileURL(sub), 'NOT_A_FILE');
    await fails('/dev/null', 'NOT_A_FILE', /a character device/);
    if (process.platform !== 'win32') {
      const fifo = path.join(dir, 'pipe.png');
      execFileSync('mkfifo', [fifo]);
      await fails(fifo, 'NOT_A_FILE', /FIFO\/pipe/);
    }
  });

  it('a file over the size limit → TOO_LARGE before it is read', async () => {
    const huge = path.join(dir, 'huge.png');
    writeFileSync(huge, '');
    truncateSync(huge, MAX_IMAGE_BYTES + 1); // sparse: no disk space used
    await fails(huge, 'TOO_LARGE', /more than the 1073741824-byte limit/);
  });

  it('long inputs are shortened in messages', async () => {
    const err = await fails(`https://example.com/${'x'.repeat(5000)}`, 'UNSUPPORTED_URL');
    expect(err.message.length).toBeLessThan(400);
  });
});
