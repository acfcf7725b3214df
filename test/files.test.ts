/**
 * User-given paths that are not regular files — a FIFO, a directory, a character device, a socket —
 * are refused before any read, by every reader in lib/ (lib/files.ts). A FIFO used to block a libuv
 * thread in open() forever: `readGGUF`, `loadModel` and `paligemma info` never returned, and four such
 * calls starved every other file operation of the process. `file:` URLs are accepted everywhere as the
 * path they name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { convertCheckpoint } from '../lib/convert/index.js';
import { GGUFError, readGGUF, writeGGUF } from '../lib/gguf/index.js';
import { loadModel } from '../lib/model/paligemma.js';
import { readNpz } from '../lib/tasks/npz.js';
import { FIXTURE_DIR } from './helpers/golden.js';
import { projectRoot } from './helpers/vocab.js';

let dir: string;
let server: net.Server;
/** Each kind of non-regular file, by the words its error must use. */
const special: Record<string, string> = {};
let gguf: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-files-'));
  special['a FIFO/pipe'] = path.join(dir, 'fifo.gguf');
  expect(spawnSync('mkfifo', [special['a FIFO/pipe']]).status, 'mkfifo').toBe(0);
  special['a directory'] = path.join(dir, 'directory.gguf');
  mkdirSync(special['a directory']);
  special['a character device'] = '/dev/null';
  special['a socket'] = path.join(dir, 'socket.gguf');
  server = net.createServer();
  await new Promise<void>((resolve) => server.listen(special['a socket'], resolve));
  gguf = path.join(dir, 'small.gguf');
  await writeGGUF(gguf, { metadata: { 'general.architecture': { type: 'string', value: 'test' } }, tensors: [] });
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs every reader on every special path in a child process (where a hang is a hung child, not a
 * hung test run) and returns what each call ended in. Twelve FIFO reads run at once first: with the
 * old code they filled libuv's four threads, and nothing after them ever ran.
 */
const CHILD = `
  const [paths, gguf] = JSON.parse(process.argv[1]);
  const { readGGUF } = await import('./lib/gguf/index.js');
  const { readNpz } = await import('./lib/tasks/npz.js');
  const { readSafetensorsHeader } = await import('./lib/convert/safetensors.js');
  const { readConfig } = await import('./lib/convert/config.js');
  const { SegmentationDecoder } = await import('./lib/tasks/segmentation.js');
  const { loadModel } = await import('./lib/model/paligemma.js');
  const fifo = paths['a FIFO/pipe'];
  await Promise.allSettled(Array.from({ length: 12 }, () => readGGUF(fifo)));
  const readers = {
    readGGUF: (p) => readGGUF(p),
    readNpz: (p) => readNpz(p),
    readSafetensorsHeader: (p) => readSafetensorsHeader(p),
    readConfig: (p) => readConfig(p),
    'SegmentationDecoder.load': (p) => SegmentationDecoder.load(p),
    loadModel: (p) => loadModel({ model: p, projector: p }),
  };
  const results = [];
  for (const [kind, p] of Object.entries(paths)) {
    for (const [reader, read] of Object.entries(readers)) {
      const err = await read(p).then(() => undefined, (e) => e);
      results.push({ kind, reader, name: err?.name, code: err?.code, message: err?.message });
    }
  }
  // The pool still serves ordinary reads.
  results.push({ kind: 'regular', reader: 'readGGUF', ok: (await readGGUF(gguf)).version === 3 });
  console.log(JSON.stringify(results));
`;

interface Outcome {
  kind: string;
  reader: string;
  name?: string;
  code?: string;
  message?: string;
  ok?: boolean;
}

/** Runs node with `args` in the project root; rejects if it has not exited after `timeoutMs`. */
function run(args: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: projectRoot, env: { ...process.env, PALIGEMMA_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.slice(-2).join(' ')} still running after ${timeoutMs} ms (a read blocked?)\n${stderr}`));
    }, timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('non-regular files', () => {
  it('every reader refuses a FIFO, a directory, a character device and a socket with a typed error in plain words', async () => {
    // Generous: the child needs a second or two; with the old code it never exits.
    const r = await run(['--import', 'tsx', '--input-type=module', '-e', CHILD, JSON.stringify([special, gguf])], 60_000);
    expect(r.status, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout) as Outcome[];
    const expected: Record<string, [name: string, code: string]> = {
      readGGUF: ['GGUFError', 'NOT_A_FILE'],
      readNpz: ['NpzError', 'NOT_A_FILE'],
      readSafetensorsHeader: ['SafetensorsError', 'NOT_A_FILE'],
      readConfig: ['ConvertError', 'NOT_A_FILE'],
      'SegmentationDecoder.load': ['TaskError', 'BAD_DECODER'],
      loadModel: ['GGUFError', 'NOT_A_FILE'],
    };
    for (const { kind, reader, name, code, message, ok } of results) {
      if (kind === 'regular') {
        expect(ok).toBe(true);
        continue;
      }
      const what = `${reader}(${kind})`;
      expect([name, code], `${what}: ${message}`).toEqual(expected[reader]);
      expect(message, what).toContain(`is ${kind}`);
      expect(message, what).toContain(special[kind]);
    }
    expect(results.length).toBe(4 * 6 + 1);
  }, 70_000);

  it('`paligemma info` on a FIFO exits with the error instead of waiting', async () => {
    const fifo = special['a FIFO/pipe'];
    const r = await run(['--import', 'tsx', 'lib/cli/main.ts', 'info', fifo], 60_000);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${fifo}: is a FIFO/pipe (reading it could wait forever for a writer), not a GGUF file`);
    expect(r.stderr).not.toMatch(/bug/i);
  }, 70_000);

  it('messages say what the path is and what was expected', async () => {
    const err = await readGGUF(special['a directory']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GGUFError);
    expect((err as GGUFError).code).toBe('NOT_A_FILE');
    expect((err as Error).message).toBe(`${special['a directory']}: is a directory, not a GGUF file`);
    const npz = await readNpz(special['a character device']).catch((e: unknown) => e);
    expect((npz as Error).message).toBe('/dev/null: is a character device, not an .npz file');
  });

  it('a missing file is still IO', async () => {
    const err = await readGGUF(path.join(dir, 'missing.gguf')).catch((e: unknown) => e);
    expect((err as GGUFError).code).toBe('IO');
    expect((err as Error).message).toMatch(/no such file/);
  });
});

describe('file: URLs', () => {
  it('are read as the path they name, given as a URL object or as a string; the result names the path', async () => {
    for (const url of [pathToFileURL(gguf), pathToFileURL(gguf).href]) {
      const g = await readGGUF(url);
      expect(g.path).toBe(gguf);
      expect(g.version).toBe(3);
    }
  });

  it('other URLs are refused with NOT_A_FILE, and a malformed file: URL too', async () => {
    for (const url of [new URL('https://example.com/model.gguf'), 'file://remote-host/model.gguf']) {
      const err = await readGGUF(url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GGUFError);
      expect((err as GGUFError).code).toBe('NOT_A_FILE');
    }
    const err = await readGGUF(new URL('https://example.com/model.gguf')).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/https: URL; only local paths and file: URLs can be read/);
  });

  it('loadModel takes file: URLs for both files (the native side opens the converted paths)', async () => {
    const files = await convertCheckpoint(FIXTURE_DIR, { outDir: path.join(dir, 'model'), outType: 'f32' });
    const model = await loadModel({ model: pathToFileURL(files.textPath).href, projector: pathToFileURL(files.projectorPath).href });
    try {
      const r = await model.generate({ tokens: [2, 100], maxTokens: 2 });
      expect(r.tokens.length).toBeGreaterThan(0);
    } finally {
      await model.dispose();
    }
  });
});
