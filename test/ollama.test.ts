import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OllamaError, ollamaModelsDir, parseOllamaName, resolveOllamaModel } from '../lib/ollama/index.js';

let store: string;
beforeAll(() => {
  store = mkdtempSync(path.join(os.tmpdir(), 'ollama-store-'));
});
afterAll(() => rmSync(store, { recursive: true, force: true }));

const MODEL = 'application/vnd.ollama.image.model';
const PROJECTOR = 'application/vnd.ollama.image.projector';

/** Adds a blob to the fake store and returns its manifest layer. */
function blob(content: string, mediaType: string): { mediaType: string; digest: string; size: number } {
  const hex = createHash('sha256').update(content).digest('hex');
  mkdirSync(path.join(store, 'blobs'), { recursive: true });
  writeFileSync(path.join(store, 'blobs', `sha256-${hex}`), content);
  return { mediaType, digest: `sha256:${hex}`, size: Buffer.byteLength(content) };
}

/** Writes a manifest (object or raw text) for `ns/model:tag`. */
function manifest(ns: string, model: string, tag: string, body: unknown): void {
  const dir = path.join(store, 'manifests', 'registry.ollama.ai', ns, model);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, tag), typeof body === 'string' ? body : JSON.stringify(body));
}

async function fails(name: string, code: string, pattern?: RegExp, options: object = {}): Promise<OllamaError> {
  const err = await resolveOllamaModel(name, { modelsDir: store, ...options }).then(() => undefined, (e: unknown) => e);
  expect(err, `${name} should fail`).toBeInstanceOf(OllamaError);
  expect((err as OllamaError).code, (err as Error).message).toBe(code);
  if (pattern) expect((err as Error).message).toMatch(pattern);
  return err as OllamaError;
}

describe('Ollama model names', () => {
  it('defaults the namespace to library and the tag to latest', () => {
    expect(parseOllamaName('paligemma')).toEqual({ host: 'registry.ollama.ai', namespace: 'library', model: 'paligemma', tag: 'latest' });
    expect(parseOllamaName('jyan1/paligemma-mix-224')).toMatchObject({ namespace: 'jyan1', model: 'paligemma-mix-224', tag: 'latest' });
    expect(parseOllamaName('jyan1/paligemma-mix-224:3b-f16')).toMatchObject({ tag: '3b-f16' });
    expect(parseOllamaName('example.com:5000/me/m:v1.0')).toEqual({ host: 'example.com:5000', namespace: 'me', model: 'm', tag: 'v1.0' });
  });

  it('rejects names that could leave the store or are not names', () => {
    const bad = ['', '../x', 'a/../../etc', '..', '/etc/passwd', 'a/b/c/d', 'ns/..', 'm:..', 'm:../x', 'a\\b', 'm:', 'ns//m',
      '.hidden', 'a b', 'm:tag/x', 'x\0y', 'ns/m:t:t', 'a'.repeat(600), '~/x', 'C:\\x', './m'];
    for (const name of bad) expect(() => parseOllamaName(name), JSON.stringify(name)).toThrow(OllamaError);
  });

  it('fuzz: any string either parses into safe path components or is rejected as BAD_NAME', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40, unit: fc.constantFrom(...'ab./:\\-_~ \0%9'.split('')) }), (name) => {
        try {
          const ref = parseOllamaName(name);
          for (const part of [ref.host, ref.namespace, ref.model, ref.tag]) {
            expect(part.includes('/') || part.includes('\\') || part === '..' || part === '.' || part === '').toBe(false);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(OllamaError);
          expect((err as OllamaError).code).toBe('BAD_NAME');
        }
      }),
      { numRuns: 2000, seed: 11 },
    );
  });

  it('finds the store in $OLLAMA_MODELS, else ~/.ollama/models', () => {
    expect(ollamaModelsDir({ OLLAMA_MODELS: '/data/ollama' })).toBe('/data/ollama');
    expect(ollamaModelsDir({})).toBe(path.join(os.homedir(), '.ollama', 'models'));
  });
});

describe('resolving in a fake store', () => {
  it('resolves the model and projector layers to blobs', async () => {
    const model = blob('text gguf', MODEL);
    const projector = blob('projector gguf', PROJECTOR);
    const template = blob('{{ .Prompt }}', 'application/vnd.ollama.image.template');
    manifest('jyan1', 'paligemma-mix-224', 'latest', { schemaVersion: 2, layers: [model, template, projector] });
    const r = await resolveOllamaModel('jyan1/paligemma-mix-224', { modelsDir: store });
    expect(r.name).toBe('jyan1/paligemma-mix-224:latest');
    expect(r.modelPath).toBe(path.join(store, 'blobs', `sha256-${model.digest.slice(7)}`));
    expect(r.projectorPath).toBe(path.join(store, 'blobs', `sha256-${projector.digest.slice(7)}`));
    expect(r.layers).toHaveLength(3);
    const verified = await resolveOllamaModel('jyan1/paligemma-mix-224:latest', { modelsDir: store, verifyDigests: true });
    expect(verified.modelPath).toBe(r.modelPath);
  });

  it('uses $OLLAMA_MODELS when no directory is given', async () => {
    const saved = process.env.OLLAMA_MODELS;
    process.env.OLLAMA_MODELS = store;
    try {
      manifest('library', 'pg', 'latest', { layers: [blob('m', MODEL), blob('p', PROJECTOR)] });
      expect((await resolveOllamaModel('pg')).name).toBe('pg:latest');
    } finally {
      if (saved === undefined) delete process.env.OLLAMA_MODELS;
      else process.env.OLLAMA_MODELS = saved;
    }
  });

  it('a model without a projector: explains how to make one, or resolves text-only when allowed', async () => {
    manifest('jyan1', 'textonly', 'latest', { layers: [blob('only text', MODEL)] });
    const err = await fails('jyan1/textonly', 'NO_PROJECTOR', /paligemma convert/);
    expect(err.message).toMatch(/projector/);
    const r = await resolveOllamaModel('jyan1/textonly', { modelsDir: store, requireProjector: false });
    expect(r.projectorPath).toBeUndefined();
  });

  it('an unknown name says to pull it', async () => {
    await fails('nobody/nothing:v9', 'NOT_FOUND', /ollama pull nobody\/nothing:v9/);
  });

  it('a missing or truncated blob says the download is incomplete', async () => {
    const gone = blob('will vanish', MODEL);
    manifest('me', 'broken', 'latest', { layers: [gone, blob('p2', PROJECTOR)] });
    rmSync(path.join(store, 'blobs', `sha256-${gone.digest.slice(7)}`));
    await fails('me/broken', 'MISSING_BLOB', /missing .*ollama pull me\/broken:latest/);
    manifest('me', 'short', 'latest', { layers: [{ ...blob('short', MODEL), size: 999 }, blob('p3', PROJECTOR)] });
    await fails('me/short', 'BAD_BLOB', /5 bytes but the manifest says 999/);
    const m = blob('digest mismatch', MODEL);
    writeFileSync(path.join(store, 'blobs', `sha256-${m.digest.slice(7)}`), 'DIGEST MISMATCH'); // same size, other bytes
    manifest('me', 'tampered', 'latest', { layers: [m, blob('p4', PROJECTOR)] });
    await fails('me/tampered', 'BAD_BLOB', /digest/, { verifyDigests: true });
  });

  it('corrupt manifests', async () => {
    const good = blob('x', MODEL);
    const cases: [string, unknown, RegExp][] = [
      ['notjson', '{"layers": [', /not valid JSON/],
      ['nolayers', { schemaVersion: 2 }, /no "layers" array/],
      ['layernotobject', { layers: [5] }, /layers\[0\] is not an object/],
      ['baddigest', { layers: [{ ...good, digest: 'sha256:../../etc/passwd' }] }, /digest/],
      ['md5', { layers: [{ ...good, digest: 'md5:abc' }] }, /digest/],
      ['badsize', { layers: [{ ...good, size: -1 }] }, /size/],
      ['nomediatype', { layers: [{ digest: good.digest, size: 1 }] }, /mediaType/],
    ];
    for (const [name, body, pattern] of cases) {
      manifest('corrupt', name, 'latest', body);
      await fails(`corrupt/${name}`, 'BAD_MANIFEST', pattern);
    }
    manifest('corrupt', 'nomodel', 'latest', { layers: [blob('p', PROJECTOR)] });
    await fails('corrupt/nomodel', 'NO_MODEL_LAYER');
    manifest('corrupt', 'twomodels', 'latest', { layers: [blob('a', MODEL), blob('b', MODEL)] });
    await fails('corrupt/twomodels', 'NO_MODEL_LAYER', /2 layers/);
  });

  it('escaping names are rejected before touching the file system', async () => {
    for (const name of ['../../../etc/passwd', '/etc/passwd', 'ns/../../x']) await fails(name, 'BAD_NAME');
  });
});

describe('manifest fuzz', () => {
  it('any manifest content resolves or fails with a typed OllamaError', async () => {
    const m = blob('fuzz model', MODEL);
    const layer = fc.record({
      mediaType: fc.oneof(fc.constantFrom(MODEL, PROJECTOR, 'x'), fc.string()),
      digest: fc.oneof(fc.constant(m.digest), fc.string(), fc.constant('sha256:' + '0'.repeat(64))),
      size: fc.oneof(fc.constant(m.size), fc.integer(), fc.double(), fc.string()),
    });
    const body = fc.oneof(
      fc.json().map((j) => j as unknown),
      fc.record({ layers: fc.array(fc.oneof(layer, fc.anything()), { maxLength: 4 }) }),
      fc.string().map((s) => s as unknown),
    );
    let typed = 0;
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        manifest('fuzz', 'm', 'latest', typeof b === 'string' ? b : JSON.stringify(b) ?? 'null');
        try {
          await resolveOllamaModel('fuzz/m', { modelsDir: store, requireProjector: false });
        } catch (err) {
          if (!(err instanceof OllamaError)) throw err;
          typed++;
        }
      }),
      { numRuns: 300, seed: 17 },
    );
    expect(typed).toBeGreaterThan(0);
  });
});
