/**
 * `pullModel` against an Ollama registry and a Hugging Face Hub on 127.0.0.1 (test/helpers/fake-registries.ts):
 * redirects to a CDN, Range requests, resuming after a cut or stalled connection and after an aborted
 * run, digests that must match, 401/403 for gated repositories. The model is the tiny PaliGemma
 * fixture: pulled from "Ollama" as GGUF blobs, and from "Hugging Face" as its safetensors checkpoint,
 * which must convert to exactly what convertCheckpoint makes of the local copy. Nothing here touches
 * the real internet: every base URL is given explicitly.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { progressLine } from '../lib/cli/pull.js';

import { convertCheckpoint } from '../lib/convert/convert.js';
import { loadModel } from '../lib/model/paligemma.js';
import { blobPath, manifestPath, parseOllamaName } from '../lib/ollama/store.js';
import { OptionError } from '../lib/options.js';
import { pullModel, PullError, type PullErrorCode, type PullOptions, type PullProgress } from '../lib/pull/index.js';
import { FakeRegistries, sha256 } from './helpers/fake-registries.js';
import { runCli } from './helpers/run-cli.js';
import { FIXTURE_DIR, GOLDEN_DIR, manifest as goldenManifest } from './helpers/golden.js';

const MODEL = 'application/vnd.ollama.image.model';
const PROJECTOR = 'application/vnd.ollama.image.projector';
const TEMPLATE = 'application/vnd.ollama.image.template';

let tmp: string;
let registries: FakeRegistries;
let textGguf: Buffer;
let projectorGguf: Buffer;
/** Converted locally from the fixture: what a Hugging Face pull must reproduce byte for byte. */
let reference: { text: Buffer; projector: Buffer };

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'paligemma-pull-'));
  const files = await convertCheckpoint(FIXTURE_DIR, { outDir: path.join(tmp, 'reference'), outType: 'f32', name: 'tiny' });
  textGguf = readFileSync(files.textPath);
  projectorGguf = readFileSync(files.projectorPath);
  reference = { text: textGguf, projector: projectorGguf };
  registries = new FakeRegistries();
  await registries.start();
});
afterAll(async () => {
  await registries.stop();
  rmSync(tmp, { recursive: true, force: true });
});

let store: string;
let run = 0;
beforeEach(() => {
  store = path.join(tmp, `store-${++run}`);
  // Tests share blobs (same content, same digest): each starts with no faults and an empty log.
  registries.faults.clear();
  registries.log.length = 0;
});

/** Options every pull here uses: the fake registries, short waits. */
function options(extra: PullOptions = {}): PullOptions {
  return { ollamaRegistry: registries.hubUrl, huggingFaceEndpoint: registries.hubUrl, ollamaModelsDir: store, retryDelayMs: 5, ...extra };
}

async function fails(name: string, o: PullOptions, code: PullErrorCode, message?: RegExp): Promise<PullError> {
  const err = await pullModel(name, o).then(() => undefined, (e: unknown) => e);
  expect(err, `${name} should fail with ${code}`).toBeInstanceOf(PullError);
  expect((err as PullError).code, (err as Error).message).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
  return err as PullError;
}

/** Publishes the tiny model as `ns/name:latest` with a template layer, like Ollama's PaliGemma models. */
function publishTiny(name: string, withProjector = true): { model: string; projector: string } {
  const model = registries.blob(textGguf, MODEL);
  const projector = registries.blob(projectorGguf, PROJECTOR);
  const template = registries.blob('{{ .Prompt }}', TEMPLATE);
  registries.ollamaModel(`${name}:latest`, withProjector ? [model, projector, template] : [model, template]);
  return { model: model.digest.slice(7), projector: projector.digest.slice(7) };
}

/** A first request from byte 0, then one that asks for the rest after what had arrived (at most `sent` bytes). */
function expectResumed(requests: { range?: string }[], sent: number): void {
  expect(requests).toHaveLength(2);
  expect(requests[0]!.range).toBeUndefined();
  const start = Number(/^bytes=(\d+)-$/.exec(requests[1]!.range ?? '')?.[1]);
  expect(start, requests[1]!.range).toBeGreaterThan(0);
  expect(start).toBeLessThanOrEqual(sent);
}

const partials = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.partial')) : []);

describe('Ollama registry', () => {
  it('pulls into the Ollama store layout, verified, through CDN redirects; loadModel({ ollama }) runs it', async () => {
    const { model, projector } = publishTiny('tests/tiny');
    const progress: PullProgress[] = [];
    const r = await pullModel('tests/tiny', options({ onProgress: (p) => progress.push(p) }));

    expect(r).toEqual({ source: 'ollama', name: 'tests/tiny:latest', modelPath: blobPath(store, `sha256:${model}`), projectorPath: blobPath(store, `sha256:${projector}`) });
    expect(readFileSync(r.modelPath).equals(textGguf)).toBe(true);
    expect(readFileSync(r.projectorPath!).equals(projectorGguf)).toBe(true);
    // The manifest is stored as served, where Ollama looks for it; every blob it names is in place.
    const stored = readFileSync(manifestPath(store, parseOllamaName('tests/tiny')), 'utf8');
    expect(stored).toBe(registries.manifests.get('tests/tiny:latest'));
    const served = JSON.parse(stored) as { config: { digest: string }; layers: { digest: string }[] };
    for (const { digest } of [served.config, ...served.layers]) expect(existsSync(blobPath(store, digest)), digest).toBe(true);
    expect(partials(path.join(store, 'blobs'))).toEqual([]);
    // Blobs came from the CDN origin, with no credentials, after a redirect from the registry.
    expect(registries.cdnRequests(model)).toHaveLength(1);
    expect(registries.log.filter((q) => q.server === 'cdn').every((q) => q.authorization === undefined)).toBe(true);

    const downloads = progress.filter((p) => p.phase === 'download');
    expect(downloads.at(-1)).toMatchObject({ bytesDone: downloads.at(-1)!.bytesTotal });
    expect(downloads.at(-1)!.bytesTotal).toBe(textGguf.length + projectorGguf.length + 13 + JSON.parse(stored).config.size);
    expect(downloads.every((p, i) => i === 0 || p.bytesDone >= downloads[i - 1]!.bytesDone)).toBe(true);
    expect(progress.some((p) => p.phase === 'verify' && p.bytesDone === textGguf.length)).toBe(true);

    const golden = goldenManifest.cases.find((c) => c.name === 'a1_caption')!;
    const loaded = await loadModel({ ollama: 'tests/tiny', ollamaModelsDir: store });
    try {
      // The image as a file: URL, one of the forms images may take.
      const out = await loaded.caption(pathToFileURL(path.join(GOLDEN_DIR, golden.image)), { maxTokens: golden.generated_ids.length });
      expect(out.tokens).toEqual(golden.generated_ids);
    } finally {
      await loaded.dispose();
    }

    // Pulled again: the manifest is fetched, the blobs are not.
    const cdnBefore = registries.log.filter((q) => q.server === 'cdn').length;
    await pullModel('tests/tiny', options());
    expect(registries.log.filter((q) => q.server === 'cdn').length).toBe(cdnBefore);
  });

  it('resumes a connection cut mid-blob with a Range request, in the same call', async () => {
    const { model } = publishTiny('tests/cut');
    const cut = Math.floor(textGguf.length / 3);
    registries.faults.set(model, { cutAfter: cut });
    const r = await pullModel('tests/cut', options());
    expect(readFileSync(r.modelPath).equals(textGguf)).toBe(true);
    expectResumed(registries.cdnRequests(model), cut);
  });

  it('resumes a stalled connection, and starts over when a server ignores the Range', async () => {
    const { model, projector } = publishTiny('tests/stall');
    registries.faults.set(model, { stallAfter: 1000 });
    registries.faults.set(projector, { cutAfter: 500, ignoreRange: true });
    const r = await pullModel('tests/stall', options({ stallTimeoutMs: 300 }));
    expect(readFileSync(r.modelPath).equals(textGguf)).toBe(true);
    expect(readFileSync(r.projectorPath!).equals(projectorGguf)).toBe(true);
    expect(registries.cdnRequests(model).map((q) => q.range)).toEqual([undefined, 'bytes=1000-']);
    expectResumed(registries.cdnRequests(projector), 500); // and then got the whole file (200), and started over
  });

  it('an aborted pull leaves a partial blob and no manifest; the next pull resumes it', async () => {
    const { model } = publishTiny('tests/abort');
    const controller = new AbortController();
    const err = await pullModel('tests/abort', options({
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'download' && p.file?.startsWith('model') && p.bytesDone > 64 * 1024) controller.abort();
      },
    })).then(() => undefined, (e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    const partial = `${blobPath(store, `sha256:${model}`)}.partial`;
    const kept = statSync(partial).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(textGguf.length);
    expect(existsSync(manifestPath(store, parseOllamaName('tests/abort')))).toBe(false);

    const r = await pullModel('tests/abort', options());
    expect(readFileSync(r.modelPath).equals(textGguf)).toBe(true);
    expect(registries.cdnRequests(model).at(-1)!.range).toBe(`bytes=${kept}-`);
  });

  it('a blob that does not match its digest is refused and deleted; no manifest is written', async () => {
    const { model } = publishTiny('tests/corrupt');
    registries.faults.set(model, { corrupt: true });
    await fails('tests/corrupt', options(), 'CORRUPT', /does not match its sha256 digest/);
    expect(existsSync(blobPath(store, `sha256:${model}`))).toBe(false);
    expect(partials(path.join(store, 'blobs'))).toEqual([]);
    expect(existsSync(manifestPath(store, parseOllamaName('tests/corrupt')))).toBe(false);
  });

  it('a model without a projector layer fails before downloading, saying what to do; allowed text-only on request', async () => {
    const { model } = publishTiny('tests/textonly', false);
    const err = await fails('tests/textonly', options(), 'NO_PROJECTOR', /no projector layer/);
    expect(err.message).toMatch(/hf:google\/paligemma-3b-mix-224/);
    expect(err.message).toMatch(/--without-projector/);
    expect(registries.cdnRequests(model)).toHaveLength(0);
    const r = await pullModel('tests/textonly', options({ requireProjector: false }));
    expect(r.projectorPath).toBeUndefined();
    expect(readFileSync(r.modelPath).equals(textGguf)).toBe(true);
  });

  it('unknown models, bad names, bad options and bad manifests fail with typed errors', async () => {
    await fails('tests/nothing:v1', options(), 'NOT_FOUND', /no model tests\/nothing:v1/);
    await fails('../etc', options(), 'BAD_NAME');
    await fails('tests/x', options({ ollamaRegistry: 'ftp://127.0.0.1' }), 'BAD_OPTION');
    registries.manifests.set('tests/junk:latest', '{"layers": [{"mediaType": "x", "digest": "md5:1", "size": 1}]}');
    await fails('tests/junk', options(), 'BAD_RESPONSE', /digest/);
    registries.manifests.set('tests/nomodel:latest', JSON.stringify({ layers: [registries.blob('t', TEMPLATE)] }));
    await fails('tests/nomodel', options(), 'NO_MODEL_LAYER');
    const err = await pullModel('tests/tiny', { ...options(), modelPath: 'x' } as PullOptions).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(OptionError);
  });

  it('takes the registry from PALIGEMMA_OLLAMA_REGISTRY when no option is given', async () => {
    publishTiny('tests/env');
    const saved = process.env.PALIGEMMA_OLLAMA_REGISTRY;
    process.env.PALIGEMMA_OLLAMA_REGISTRY = registries.hubUrl;
    try {
      const r = await pullModel('tests/env', { ollamaModelsDir: store });
      expect(readFileSync(r.modelPath).equals(textGguf)).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.PALIGEMMA_OLLAMA_REGISTRY;
      else process.env.PALIGEMMA_OLLAMA_REGISTRY = saved;
    }
  });
});

describe('Hugging Face Hub', () => {
  const COMMIT = 'a'.repeat(40);
  /** The fixture checkpoint as a repository, with files a pull must leave alone. */
  function publishCheckpoint(name: string, extra: Partial<{ token: string; config: Buffer }> = {}): Map<string, Buffer> {
    const files = new Map<string, Buffer>();
    for (const f of readdirSync(FIXTURE_DIR)) if (statSync(path.join(FIXTURE_DIR, f)).isFile()) files.set(f, readFileSync(path.join(FIXTURE_DIR, f)));
    if (extra.config) files.set('config.json', extra.config);
    files.set('README.md', Buffer.from('# not needed'));
    files.set('pytorch_model.bin', Buffer.from('not needed either'));
    files.set('extra/model.safetensors', Buffer.from('nor this'));
    registries.hfRepo(name, { commit: COMMIT, files, lfs: new Set(['model.safetensors', 'tokenizer.json', 'pytorch_model.bin']), token: extra.token });
    return files;
  }
  const resolved = (repo: string) => registries.log.filter((q) => q.server === 'hub' && q.path.startsWith(`/${repo}/resolve/`)).map((q) => path.basename(q.path));

  it('downloads the checkpoint files and converts them to what convertCheckpoint makes of the local copy', async () => {
    publishCheckpoint('google/tiny');
    const outDir = path.join(tmp, `hf-${run}`);
    const progress: PullProgress[] = [];
    const r = await pullModel('hf:google/tiny', options({ outDir, outType: 'f32', onProgress: (p) => progress.push(p) }));
    expect(r).toEqual({ source: 'huggingface', name: `hf:google/tiny@${COMMIT}`, modelPath: path.join(outDir, 'tiny-f32.gguf'), projectorPath: path.join(outDir, 'mmproj-tiny-f32.gguf') });
    expect(readFileSync(r.modelPath).equals(reference.text)).toBe(true);
    expect(readFileSync(r.projectorPath!).equals(reference.projector)).toBe(true);
    expect(resolved('google/tiny')).not.toContain('README.md');
    expect(resolved('google/tiny')).not.toContain('pytorch_model.bin');
    expect(registries.log.some((q) => q.path.includes('extra'))).toBe(false);
    expect(registries.cdnRequests(sha256(readFileSync(path.join(FIXTURE_DIR, 'model.safetensors'))))).toHaveLength(1);
    expect(existsSync(path.join(outDir, '.downloads', 'huggingface', 'google', 'tiny', COMMIT))).toBe(false); // deleted after converting
    expect(progress.map((p) => p.phase)).toContain('convert');
    expect(progress.filter((p) => p.phase === 'convert').at(-1)).toMatchObject({ bytesDone: progress.filter((p) => p.phase === 'convert').at(-1)!.bytesTotal });
  });

  it('a gated repository: 401 without a token and 403 with a refused one, each saying what to do; HF_TOKEN goes to the Hub only', async () => {
    publishCheckpoint('gated/tiny', { token: 'hf_right' });
    const outDir = path.join(tmp, `hf-${run}`);
    const none = await fails('hf:gated/tiny', options({ outDir }), 'UNAUTHORIZED', /HF_TOKEN/);
    expect(none.message).toContain(`${registries.hubUrl}/gated/tiny`); // where to accept the license
    await fails('hf:gated/tiny', options({ outDir, token: 'hf_wrong' }), 'FORBIDDEN', /accept the model's license/);

    const saved = process.env.HF_TOKEN;
    process.env.HF_TOKEN = 'hf_right';
    try {
      const r = await pullModel('hf:gated/tiny', options({ outDir, outType: 'f32' }));
      expect(readFileSync(r.modelPath).equals(reference.text)).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.HF_TOKEN;
      else process.env.HF_TOKEN = saved;
    }
    const authorized = registries.log.filter((q) => q.authorization === 'Bearer hf_right');
    expect(authorized.length).toBeGreaterThan(0);
    expect(authorized.every((q) => q.server === 'hub')).toBe(true);
  });

  it('refuses a corrupted LFS file, and a repository that is not PaliGemma before fetching its weights', async () => {
    const files = publishCheckpoint('corrupt/tiny');
    registries.faults.set(sha256(files.get('model.safetensors')!), { corrupt: true });
    await fails('hf:corrupt/tiny', options({ outDir: path.join(tmp, `hf-${run}`) }), 'CORRUPT', /model\.safetensors.*sha256/);

    const config = JSON.parse(files.get('config.json')!.toString()) as Record<string, unknown>;
    publishCheckpoint('google/llama', { config: Buffer.from(JSON.stringify({ ...config, model_type: 'llama' })) });
    await fails('hf:google/llama', options({ outDir: path.join(tmp, `hf-${run}`) }), 'NOT_PALIGEMMA', /not a PaliGemma checkpoint/);
    expect(resolved('google/llama')).not.toContain('model.safetensors');
  });

  it('unknown repositories and revisions, and bad names', async () => {
    publishCheckpoint('other/tiny');
    await fails('hf:other/tiny@v9', options({ outDir: tmp }), 'NOT_FOUND', /no revision "v9"/);
    await fails('hf:nobody/nothing', options({ outDir: tmp }), 'UNAUTHORIZED', /gated or private, or does not exist/);
    await fails('hf:google', options(), 'BAD_NAME', /hf:<owner>\/<repo>/);
    await fails('hf:google/../x', options(), 'BAD_NAME');
  });

  it('keepDownload keeps the checkpoint, and a second pull reuses it instead of downloading again', async () => {
    publishCheckpoint('kept/tiny');
    const outDir = path.join(tmp, `hf-${run}`);
    await pullModel('hf:kept/tiny', options({ outDir, outType: 'f32', keepDownload: true }));
    const dir = path.join(outDir, '.downloads', 'huggingface', 'kept', 'tiny', COMMIT);
    expect(readFileSync(path.join(dir, 'model.safetensors')).equals(readFileSync(path.join(FIXTURE_DIR, 'model.safetensors')))).toBe(true);
    const before = resolved('kept/tiny').length;
    writeFileSync(path.join(outDir, 'tiny-f32.gguf'), 'stale'); // the conversion is redone
    const r = await pullModel('hf:kept/tiny@' + COMMIT, options({ outDir, outType: 'f32' }));
    expect(resolved('kept/tiny').length).toBe(before);
    expect(readFileSync(r.modelPath).equals(reference.text)).toBe(true);
  });
});

describe('paligemma pull', () => {
  const cli = runCli;

  it('prints the two paths of an Ollama pull; refuses a model without a projector unless --without-projector', async () => {
    publishTiny('cli/tiny');
    const { model } = publishTiny('cli/textonly', false);
    const ok = await cli(['pull', 'cli/tiny', '--registry', registries.hubUrl, '--ollama-models', store]);
    expect(ok.code, ok.stderr).toBe(0);
    const [text, projector] = ok.stdout.split('\n');
    expect(readFileSync(text!).equals(textGguf)).toBe(true);
    expect(readFileSync(projector!).equals(projectorGguf)).toBe(true);

    const refused = await cli(['pull', 'cli/textonly', '--registry', registries.hubUrl, '--ollama-models', store]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^paligemma pull: cli\/textonly:latest has no projector layer/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    const textOnly = await cli(['pull', 'cli/textonly', '--registry', registries.hubUrl, '--ollama-models', store, '--without-projector']);
    expect([textOnly.code, textOnly.stdout]).toEqual([0, blobPath(store, `sha256:${model}`)]);
  });

  it('a gated Hugging Face repository without HF_TOKEN exits 1 saying how to get access', async () => {
    registries.hfRepo('cli/gated', { commit: 'b'.repeat(40), files: new Map([['config.json', Buffer.from('{}')], ['tokenizer.json', Buffer.from('{}')], ['model.safetensors', Buffer.from('x')]]), lfs: new Set(), token: 't' });
    const saved = process.env.HF_TOKEN;
    delete process.env.HF_TOKEN;
    try {
      const r = await cli(['pull', 'hf:cli/gated', '--endpoint', registries.hubUrl, '--out', path.join(tmp, `cli-${run}`)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('set HF_TOKEN');
    } finally {
      if (saved !== undefined) process.env.HF_TOKEN = saved;
    }
  });

  it('draws a progress line with a bar, sizes, speed and time left', () => {
    const line = progressLine({ phase: 'download', file: 'model 3df4adf6d650', bytesDone: 2.5e9, bytesTotal: 5e9 }, 50e6);
    expect(line).toBe(`pulling model 3df4adf6d650  50% [${'█'.repeat(12)}${'░'.repeat(12)}] 2.50 GB / 5.00 GB  50.0 MB/s  50s left`);
    expect(progressLine({ phase: 'verify', file: 'model', bytesDone: 1, bytesTotal: 4 }, undefined)).toBe('verifying model  25%');
  });
});
