/**
 * Memory: the weights are memory-mapped, not read. Loading a ~1.3 GB model leaves its pages out of
 * RAM until a forward pass touches them, and two processes that load the same file share one copy
 * in the page cache. Measured in child processes from /proc/self/smaps (Linux), on a sparse file
 * with real-size Gemma shapes, so the test writes almost nothing to disk.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { writeGGUF, type GGUFTensorInput, type GGUFValue } from '../lib/gguf/index.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MB = 2 ** 20;

let dir: string;
let modelPath: string;
let fileSize: number;

/**
 * A text model with Gemma-2B's widths (hidden 2048, FFN 16384, vocab 257216, F16) but one block:
 * 1.27 GB of tensor data, all holes. Byte pieces are enough for the tokenizer (the rest are unused pieces).
 */
async function writeSparseModel(file: string): Promise<void> {
  const hidden = 2048, ffn = 16384, vocab = 257216, heads = 8, headDim = 256;
  const u32 = (value: number): GGUFValue => ({ type: 'u32', value });
  // Byte pieces are enough for the tokenizer; unused pieces fill the vocabulary up to token_embd's rows.
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const tokens = ['<pad>', '<eos>', '<bos>', '<unk>', ...bytes, ...Array.from({ length: vocab - 260 }, (_, i) => `<unused${i}>`)];
  const types = Int32Array.from(tokens, (_, i) => (i < 3 ? 3 : i === 3 ? 2 : i < 260 ? 6 : 5));
  const metadata = new Map<string, GGUFValue>([
    ['general.architecture', { type: 'string', value: 'gemma' }],
    ['gemma.context_length', u32(64)],
    ['gemma.embedding_length', u32(hidden)],
    ['gemma.block_count', u32(1)],
    ['gemma.feed_forward_length', u32(ffn)],
    ['gemma.attention.head_count', u32(heads)],
    ['gemma.attention.head_count_kv', u32(1)],
    ['gemma.attention.key_length', u32(headDim)],
    ['gemma.attention.value_length', u32(headDim)],
    ['gemma.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-6 }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
    ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: new Float32Array(tokens.length) }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: types }],
    ['tokenizer.ggml.bos_token_id', u32(2)],
    ['tokenizer.ggml.eos_token_id', u32(1)],
  ]);
  const tensors: GGUFTensorInput[] = [
    { name: 'token_embd.weight', type: 'F16', dims: [hidden, vocab] },
    { name: 'blk.0.attn_norm.weight', type: 'F32', dims: [hidden] },
    { name: 'blk.0.attn_q.weight', type: 'F16', dims: [hidden, heads * headDim] },
    { name: 'blk.0.attn_k.weight', type: 'F16', dims: [hidden, headDim] },
    { name: 'blk.0.attn_v.weight', type: 'F16', dims: [hidden, headDim] },
    { name: 'blk.0.attn_output.weight', type: 'F16', dims: [heads * headDim, hidden] },
    { name: 'blk.0.ffn_norm.weight', type: 'F32', dims: [hidden] },
    { name: 'blk.0.ffn_gate.weight', type: 'F16', dims: [hidden, ffn] },
    { name: 'blk.0.ffn_up.weight', type: 'F16', dims: [hidden, ffn] },
    { name: 'blk.0.ffn_down.weight', type: 'F16', dims: [ffn, hidden] },
    { name: 'output_norm.weight', type: 'F32', dims: [hidden] },
  ];
  await writeGGUF(file, { metadata, tensors }); // no data: every tensor is a hole
}

/**
 * The child: loads the model, reports the memory of its mapping, runs one forward pass (touching
 * every weight), reports again, then holds the mapping until its stdin closes.
 */
const CHILD = `
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
const { loadModel } = await import(${JSON.stringify(pathToFileURL(path.join(projectRoot, 'lib/model/paligemma.ts')).href)});
const file = process.env.MODEL_FILE;
// Sums the smaps fields of every mapping of \`file\` (bytes).
function mapping() {
  const out = { rss: 0, pss: 0, sharedClean: 0 };
  let inFile = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inFile = line.endsWith(' ' + file);
    else if (inFile) {
      const m = /^(Rss|Pss|Shared_Clean):\\s+(\\d+) kB/.exec(line);
      if (m) out[{ Rss: 'rss', Pss: 'pss', Shared_Clean: 'sharedClean' }[m[1]]] += Number(m[2]) * 1024;
    }
  }
  return out;
}
const report = (stage, extra = {}) => process.stdout.write(JSON.stringify({ stage, ...mapping(), ...extra }) + '\\n');
const model = await loadModel({ model: file });
report('loaded', { vmRss: Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024 });
await model.generate({ tokens: [2], maxTokens: 1 });
report('touched');
for await (const _ of createInterface({ input: process.stdin }));
await model.dispose();
`;

interface Report {
  stage: 'loaded' | 'touched';
  rss: number;
  pss: number;
  sharedClean: number;
  vmRss?: number;
}

/** Starts a child; resolves its reports as they arrive. */
function startChild(): { child: ChildProcessWithoutNullStreams; next: () => Promise<Report> } {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
    cwd: projectRoot,
    env: { ...process.env, MODEL_FILE: modelPath },
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the child exited early: ${stderr}`);
    return JSON.parse(value) as Report;
  };
  return { child, next };
}

async function finish(child: ChildProcessWithoutNullStreams): Promise<void> {
  child.stdin.end();
  const [code] = await once(child, 'exit');
  expect(code).toBe(0);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pg-rel-memory-'));
  modelPath = path.join(dir, 'sparse-gemma.gguf');
  await writeSparseModel(modelPath);
  fileSize = statSync(modelPath).size;
  // Sparse: the data is holes, so the test costs no disk space.
  expect(statSync(modelPath).blocks * 512).toBeLessThan(16 * MB);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('memory-mapped weights', () => {
  it('RSS stays far below the file size after load, and grows only when pages are touched', async () => {
    expect(fileSize).toBeGreaterThan(1.2e9);
    const { child, next } = startChild();
    try {
      const loaded = await next();
      const touched = await next();
      // Loading reads the header only (a few MB of metadata is parsed from a buffer, not mapped);
      // the kernel's fault-around may map a few pages near it. 1% of 1.27 GB is 12.7 MB.
      expect(loaded.rss, `mapped RSS after load: ${(loaded.rss / MB).toFixed(1)} MB`).toBeLessThan(fileSize * 0.01);
      expect(loaded.vmRss!, 'the whole process after load').toBeLessThan(fileSize * 0.5);
      // One forward pass reads every weight: now the mapping is resident, which proves the
      // measurement above could have seen the weights had they been loaded.
      expect(touched.rss, `mapped RSS after a forward pass: ${(touched.rss / MB).toFixed(0)} MB`).toBeGreaterThan(fileSize * 0.9);
    } finally {
      await finish(child);
    }
  });

  it('two processes loading the same file share its pages', async () => {
    // In sequence: the second process measures only after the first has touched every page.
    const first = startChild();
    let second: ReturnType<typeof startChild> | undefined;
    try {
      await first.next();
      const firstTouched = await first.next();
      second = startChild();
      await second.next();
      const secondTouched = await second.next();
      // Shared_Clean counts pages mapped by more than one process: the second process's weights
      // are the first one's page-cache pages, not a copy. Pss halves accordingly.
      expect(firstTouched.rss).toBeGreaterThan(fileSize * 0.9);
      expect(secondTouched.sharedClean, 'shared bytes in the second process').toBeGreaterThan(fileSize * 0.9);
      expect(secondTouched.pss, 'proportional share').toBeLessThan(secondTouched.rss * 0.6);
    } finally {
      await finish(first.child);
      if (second) await finish(second.child);
    }
  });
});

describe('soak', () => {
  it('60 describe calls: RSS flat after 10 warm-up calls, answers stable (bench/soak.ts, short run)', async () => {
    // The full run is `node --expose-gc --import tsx bench/soak.ts` (1000 calls). With the
    // collector forced before each sample, RSS moves by ~2 MB over 1000 calls; the 20 MB margin
    // catches any per-call leak of 0.4 MB or more (a logits row is 1 MB) within these 50 calls.
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/soak.ts', '60', '8', '10'], {
      cwd: projectRoot,
      env: process.env,
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const [code] = await once(child, 'exit');
    const growth = /RSS growth after 10 warm-up calls: (-?[\d.]+) MB/.exec(out);
    expect(growth, out).not.toBeNull();
    expect(Number(growth![1]), out).toBeLessThan(20);
    expect(out).not.toMatch(/different answer/);
    expect(code, out).toBe(0);
  });
});
