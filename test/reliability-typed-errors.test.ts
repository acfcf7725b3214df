/**
 * Failures that used to surface untyped or misleading, so that the CLI called each of them "a bug":
 * each is now an error of the package's own classes, with a code and the file or option named —
 * refused before anything is mapped where the headers tell — and the CLI keeps "this looks like a
 * bug" for errors nobody explained.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { reportError } from '../lib/cli/errors.js';
import { convertCheckpoint, type ConvertResult } from '../lib/convert/index.js';
import { PaliGemmaError } from '../lib/errors.js';
import type { GGUFValue } from '../lib/gguf/index.js';
import { preprocess, ImageError } from '../lib/image/index.js';
import { ModelFilesError, locateModelFiles } from '../lib/model/files.js';
import { textSpec } from '../lib/model/native-spec.js';
import { loadModel } from '../lib/model/paligemma.js';
import { native } from '../lib/native.js';
import { FIXTURE_DIR } from './helpers/golden.js';
import { caught, rewriteGGUF, watchNativeModel, type NativeWatch } from './helpers/reliability.js';

let dir: string;
let tiny: ConvertResult;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-rel-typed-'));
  tiny = await convertCheckpoint(FIXTURE_DIR, { outDir: dir, outType: 'f32' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let watch: NativeWatch;
beforeEach(() => {
  watch = watchNativeModel();
});
afterEach(() => watch.restore());

/** A copy of the tiny text model with `edit` applied to its metadata. */
async function textWith(name: string, edit: (m: Map<string, GGUFValue>) => void): Promise<string> {
  const file = path.join(dir, `${name}.gguf`);
  await rewriteGGUF(tiny.textPath, file, { metadata: edit });
  return file;
}

/** loadModel of `file` must fail with ModelFilesError `code` naming the file, before mapping anything. */
async function refusedBeforeMapping(file: string, code: string, message: RegExp): Promise<void> {
  const err = await caught(() => loadModel({ model: file }));
  expect(err).toBeInstanceOf(ModelFilesError);
  expect(err.code).toBe(code);
  expect((err as ModelFilesError).path).toBe(file);
  expect(err.message).toMatch(message);
  expect(watch.constructed, 'no native handle for a refused file').toBe(0);
}

describe('model files that loaded, then failed every call (or failed deep in native code)', () => {
  it('a bos_token_id of -1, or no <bos> at all: every prompt starts with one', async () => {
    const minusOne = await textWith('bos-minus-1', (m) => m.set('tokenizer.ggml.bos_token_id', { type: 'i32', value: -1 }));
    await refusedBeforeMapping(minusOne, 'BAD_METADATA', /tokenizer\.ggml\.bos_token_id is -1: every PaliGemma prompt starts with <bos>/);
    const none = await textWith('no-bos', (m) => {
      m.delete('tokenizer.ggml.bos_token_id');
      const tokens = m.get('tokenizer.ggml.tokens') as { type: 'array'; itemType: 'string'; value: string[] };
      m.set('tokenizer.ggml.tokens', { ...tokens, value: tokens.value.map((t) => (t === '<bos>' ? '<not-bos>' : t)) });
    });
    await refusedBeforeMapping(none, 'BAD_METADATA', /there is no tokenizer\.ggml\.bos_token_id and no <bos> token/);
  });

  it('a tokenizer of 1000 pieces beside 257216 embedding rows: the model could emit ids no piece decodes', async () => {
    const file = await textWith('vocab-1000', (m) => {
      for (const key of ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) {
        const v = m.get(key) as { type: 'array'; itemType: 'string'; value: string[] };
        m.set(key, { ...v, value: v.value.slice(0, 1000) } as GGUFValue);
      }
    });
    await refusedBeforeMapping(file, 'BAD_SHAPE', /the tokenizer has 1000 tokens but token_embd\.weight has 257216 rows: the model could emit ids 1000\.\.257215/);
  });

  it('an odd head size, or values of another size than keys (native checks without a code, before)', async () => {
    const odd = await textWith('key-25', (m) => m.set('gemma.attention.key_length', { type: 'u32', value: 25 }));
    await refusedBeforeMapping(odd, 'BAD_METADATA', /gemma\.attention\.key_length is 25; it must be even/);
    const values = await textWith('value-12', (m) => m.set('gemma.attention.value_length', { type: 'u32', value: 12 }));
    await refusedBeforeMapping(values, 'BAD_METADATA', /value_length 12 differs from key_length 24/);
  });

  it('tensors misaligned for their type: a ModelFilesError naming the tensor, the offset and the alignment', async () => {
    const file = await textWith('align-2', (m) => m.set('general.alignment', { type: 'u32', value: 2 }));
    const err = await caught(() => loadModel({ model: file }));
    expect(err).toBeInstanceOf(ModelFilesError);
    expect(err).toMatchObject({ code: 'BAD_TENSOR', path: file });
    expect(err.message).toMatch(/tensor \S+ is misaligned: it starts at byte \d+, and F32 data must start at a multiple of 4/);
  });

  const sysfs = '/sys/devices/system/cpu/cpu0/topology/core_id';
  it.skipIf(!existsSync(sysfs))('a file system that cannot memory-map (sysfs): MAP_FAILED saying so and what to do', async () => {
    const files = await locateModelFiles({ model: tiny.textPath, requireProjector: false });
    const spec = { text: { ...textSpec(files.text), path: sysfs } };
    const err = await caught(() => new native.NativeModel(spec));
    expect(err).toBeInstanceOf(ModelFilesError);
    expect(err).toMatchObject({ code: 'MAP_FAILED', path: sysfs });
    expect(err.message).toBe(`${sysfs}: cannot mmap: No such device (its file system cannot memory-map files: copy it to a local disk)`);
  });
});

describe('images wider or taller than the resize takes, yet under maxPixels', () => {
  it.each([
    [1_100_000, 1],
    [1, 1_100_000],
  ])('%ix%i: ImageError TOO_LARGE before any native call (a native RangeError before)', async (width, height) => {
    const resize = vi.spyOn(native, 'resizeRgb');
    try {
      const image = { data: new Uint8Array(width * height * 3), width, height, channels: 3 as const };
      const err = await caught(() => preprocess(image, { size: 224 }));
      expect(err).toBeInstanceOf(ImageError);
      expect(err.code).toBe('TOO_LARGE');
      expect(err.message).toBe(`image is ${width}x${height}; images up to 1048576 pixels on a side can be resized`);
      expect(resize).not.toHaveBeenCalled();
    } finally {
      resize.mockRestore();
    }
  });
});

describe('the CLI says "this looks like a bug" for unexplained errors only', () => {
  /** What reportError prints for `err`. */
  function report(err: unknown): string {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
    try {
      reportError('caption photo.jpg', err);
    } finally {
      spy.mockRestore();
    }
    return lines.join('\n');
  }
  const bug = /this looks like a bug/;

  it('typed errors of the native model: hints, no bug', () => {
    expect(report(new PaliGemmaError('OUT_OF_MEMORY', 'out of memory: a KV cache of 9 positions needs 1 TiB'))).toMatch(/hint: free some memory/);
    expect(report(new PaliGemmaError('THREAD_LIMIT', 'cannot start the model\'s 900 threads'))).toMatch(/hint: lower --threads/);
    expect(report(new ModelFilesError('MODEL_FILE_CHANGED', 'the file changed size', '/m.gguf'))).toMatch(/hint: a model file was rewritten or cut short/);
    for (const code of ['OUT_OF_MEMORY', 'THREAD_LIMIT', 'SOMETHING_NEW']) expect(report(new PaliGemmaError(code as 'OUT_OF_MEMORY', 'x'))).not.toMatch(bug);
  });

  it('the OS refusing something is not a bug; an unexplained Error is', async () => {
    const enoent = await readFile(path.join(dir, 'nothing-here')).catch((e: unknown) => e);
    expect(report(enoent)).not.toMatch(bug);
    expect(report(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', syscall: 'read' }))).not.toMatch(bug);
    expect(report(new TypeError('x is not a function'))).toMatch(bug);
    expect(report(Object.assign(new Error('odd'), { code: 'E_SOMETHING' }))).toMatch(bug);
  });
});
