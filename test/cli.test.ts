/**
 * The `paligemma` command end to end: each case spawns `node --import tsx lib/cli/main.ts …` with the
 * test's environment (so PALIGEMMA_ADDON picks the native build) and checks exit code, stdout and
 * stderr. The model is the shared tiny random-weight PaliGemma, converted once; its greedy tokens are
 * known from the golden fixture (Hugging Face transformers), which the CLI's output must reproduce.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint } from '../lib/convert/convert.js';
import { readGGUF, writeGGUF } from '../lib/gguf/index.js';
import { quantizeModel } from '../lib/quant/quantize.js';
import { segmentationDecoderGGUF } from '../lib/tasks/segmentation.js';
import { FIXTURE_DIR, GOLDEN_DIR, manifest } from './helpers/golden.js';
import { randomVae } from './helpers/vae.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(projectRoot, 'lib/cli/main.ts');
const IMG_A1 = path.join(GOLDEN_DIR, 'img_a1.png');
const IMG_A2 = path.join(GOLDEN_DIR, 'img_a2.jpg');
const config = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'config.json'), 'utf8'));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion; never rejects on a non-zero exit. */
function cli(args: string[], input?: Buffer): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.PALIGEMMA_DEBUG; // stack traces must not appear without it
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: projectRoot, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** No stack frames in what a user sees. */
function expectNoStack(r: Run): void {
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

const golden = (name: string) => manifest.cases.find((c) => c.name === name)!;

let dir: string;
let text: string;
let projector: string;
let decoder: string;
let model: string[];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'paligemma-cli-'));
  const files = await convertCheckpoint(FIXTURE_DIR, { outDir: path.join(dir, 'model'), outType: 'f32' });
  text = files.textPath;
  projector = files.projectorPath;
  model = ['--model', text, '--projector', projector];
  // A small random mask decoder in the vae-oid layout (128 codes, as the <seg> tokens need).
  decoder = path.join(dir, 'decoder.gguf');
  await writeGGUF(decoder, segmentationDecoderGGUF(randomVae({ codes: 128, dim: 16, width: 8, upsample: [8, 8, 8, 4] }, 3)));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const COMMANDS = ['describe', 'caption', 'ocr', 'answer', 'detect', 'segment', 'info', 'pull', 'convert', 'bench', 'features'];


describe('help and usage errors', () => {
  it('lists every command; no command at all is a usage error', async () => {
    const [help, none] = await Promise.all([cli(['--help']), cli([])]);
    expect(help.code).toBe(0);
    for (const name of COMMANDS) expect(help.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('Usage: paligemma <command>');
  });

  it('--help and `help <command>` print a command\'s usage', async () => {
    const [flag, word] = await Promise.all([cli(['segment', '--help']), cli(['help', 'detect'])]);
    expect(flag.code).toBe(0);
    expect(flag.stdout).toContain('Usage: paligemma segment');
    expect(flag.stdout).toContain('--segmentation FILE');
    expect(word.code).toBe(0);
    expect(word.stdout).toContain('Usage: paligemma detect');
  });

  it('an unknown command or option exits 2 and names it', async () => {
    const [command, option, value] = await Promise.all([
      cli(['frobnicate']),
      cli(['detect', IMG_A1, ...model, '--lables', 'cat']),
      cli(['caption', IMG_A1, ...model, '--max-tokens', 'lots']),
    ]);
    expect(command.code).toBe(2);
    expect(command.stderr).toContain("unknown command 'frobnicate'");
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('unknown option --lables');
    expect(option.stderr).toContain('usage: paligemma detect');
    expect(value.code).toBe(2);
    expect(value.stderr).toContain("--max-tokens must be an integer, got 'lots'");
    [command, option, value].forEach(expectNoStack);
  });

  it('argument errors are found before the model loads', async () => {
    // The model paths do not exist: these must fail on the arguments, before touching them.
    const fake = ['--model', path.join(dir, 'none.gguf'), '--projector', path.join(dir, 'none-mmproj.gguf')];
    const [noLabels, badLabel, missing] = await Promise.all([
      cli(['detect', IMG_A1, ...fake]),
      cli(['detect', IMG_A1, ...fake, '--labels', 'cat;dog']), // the library refuses ';' in a label
      cli(['detect', path.join(dir, 'missing.png'), ...fake, '--labels', 'cat']),
    ]);
    expect(noLabels.code).toBe(2);
    expect(noLabels.stderr).toContain('missing --labels');
    expect(badLabel.code).toBe(1);
    expect(badLabel.stderr).toMatch(/paligemma detect: .*;/);
    expect(badLabel.stderr).toContain('hint: labels are separated by commas');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot read image');
    [noLabels, badLabel, missing].forEach(expectNoStack);
  });

  it('segment without --segmentation says which file to get', async () => {
    const r = await cli(['segment', IMG_A1, ...model, '--label', 'cat']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('vae-oid.npz');
    expect(r.stderr).toContain('hint: then run again with --segmentation vae-oid.npz');
    expect(r.stderr).not.toContain('loadModel'); // a CLI user is told about flags, not the library API
    expect(r.stdout).toBe('');
    expectNoStack(r);
  });
});

describe('tasks on the tiny model', () => {
  it('caption --json gives the golden greedy tokens, the image size and the timings', async () => {
    const c = golden('a1_caption');
    expect(c.prompt).toBe('caption en');
    const r = await cli(['caption', IMG_A1, ...model, '--max-tokens', String(c.generated_ids.length), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]!);
    expect(out.tokens).toEqual(c.generated_ids);
    expect(out.prompt).toBe('caption en');
    expect(out.image).toBe(IMG_A1);
    const meta = await sharp(IMG_A1).metadata();
    expect([out.width, out.height]).toEqual([meta.width, meta.height]);
    expect(out.stopReason).toBe('maxTokens');
    expect(out.timings.generatedTokens).toBe(c.generated_ids.length);
    expect(typeof out.text).toBe('string');
  });

  it('describe prints the plain text, the same as --json has; several images get a prefix each', async () => {
    const c = golden('a2_answer');
    const args = ['--prompt', c.prompt, '--max-tokens', String(c.generated_ids.length)];
    const [plain, json, two] = await Promise.all([
      cli(['describe', IMG_A2, ...model, ...args]),
      cli(['describe', IMG_A2, ...model, ...args, '--json']),
      cli(['describe', IMG_A1, IMG_A2, ...model, '--max-tokens', '3']),
    ]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout);
    expect(out.tokens).toEqual(c.generated_ids);
    expect(out.text.length).toBeGreaterThan(0);
    expect(plain.stdout).toBe(`${out.text}\n`);
    expect(plain.stderr).toBe(''); // no progress when stderr is not a terminal
    expect(two.code, two.stderr).toBe(0);
    const lines = two.stdout.split('\n').filter((l) => l.startsWith('/'));
    expect(lines.map((l) => l.slice(0, l.indexOf(': ')))).toEqual([IMG_A1, IMG_A2]);
  });

  it('--ollama NAME finds the model in an Ollama store; a missing one fails with what to do', async () => {
    // A store as `ollama pull` leaves it: blobs named by digest, a manifest naming them by media type.
    const store = path.join(dir, 'ollama');
    mkdirSync(path.join(store, 'blobs'), { recursive: true });
    const layer = (file: string, mediaType: string) => {
      const hex = createHash('sha256').update(readFileSync(file)).digest('hex');
      copyFileSync(file, path.join(store, 'blobs', `sha256-${hex}`));
      return { mediaType, digest: `sha256:${hex}`, size: statSync(file).size };
    };
    const layers = [layer(text, 'application/vnd.ollama.image.model'), layer(projector, 'application/vnd.ollama.image.projector')];
    mkdirSync(path.join(store, 'manifests/registry.ollama.ai/library/tiny'), { recursive: true });
    writeFileSync(path.join(store, 'manifests/registry.ollama.ai/library/tiny/latest'), JSON.stringify({ schemaVersion: 2, layers }));
    const c = golden('a1_caption');
    const [found, missing] = await Promise.all([
      cli(['caption', IMG_A1, '--ollama', 'tiny', '--ollama-models', store, '--max-tokens', '12', '--json']),
      cli(['caption', IMG_A1, '--ollama', 'absent:7b', '--ollama-models', store]),
    ]);
    expect(found.code, found.stderr).toBe(0);
    expect(JSON.parse(found.stdout).tokens).toEqual(c.generated_ids);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ollama pull');
    expect(missing.stderr).toContain('hint:');
    expectNoStack(missing);
  });

  it('answer takes --question, and the image from standard input with -', async () => {
    const c = golden('a2_answer');
    expect(c.prompt).toBe('answer en what is in the image?');
    const r = await cli(['answer', '-', ...model, '-q', 'what is in the image?', '--max-tokens', '12', '--json'], readFileSync(IMG_A2));
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.tokens).toEqual(c.generated_ids);
    expect(out.prompt).toBe(c.prompt);
  });

  it('a file that is not an image fails alone: an error line, the other image still runs, exit 1', async () => {
    const r = await cli(['ocr', path.join(FIXTURE_DIR, 'config.json'), IMG_A1, ...model, '--max-tokens', '2', '--json']);
    expect(r.code).toBe(1);
    const [bad, good] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(bad.error.name).toBe('ImageError');
    expect(bad.image).toContain('config.json');
    expect(good.tokens).toHaveLength(2);
    expect(r.stderr).toContain('hint: supported formats');
    expectNoStack(r);
  });

  it('detect --json --draw: the golden tokens, parsed objects, and a PNG of the original size', async () => {
    const c = golden('a1_detect');
    const out = path.join(dir, 'detect.png');
    const r = await cli(['detect', IMG_A1, ...model, '--labels', 'cat', '--max-tokens', '12', '--json', '--draw', out]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.prompt).toBe(c.prompt);
    expect(result.tokens).toEqual(c.generated_ids);
    // The random model writes no <loc> tokens (ids ≥ 256000), so there is nothing to find.
    expect(c.generated_ids.every((id) => id < 256000)).toBe(true);
    expect(result.detections).toEqual([]);
    expect(Array.isArray(result.skipped)).toBe(true);
    const [src, drawn] = await Promise.all([sharp(IMG_A1).metadata(), sharp(out).metadata()]);
    expect(drawn.format).toBe('png');
    expect([drawn.width, drawn.height]).toEqual([src.width, src.height]);
  });

  it('segment with a decoder: JSON lines per image and one drawing per image in a directory', async () => {
    const outDir = path.join(dir, 'drawn') + '/';
    const r = await cli(['segment', IMG_A1, IMG_A2, ...model, '--label', 'cat', '--segmentation', decoder, '--max-tokens', '4', '--json', '--draw', outDir]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.image)).toEqual([IMG_A1, IMG_A2]);
    for (const l of lines) {
      expect(l.prompt).toBe('segment cat');
      expect(Array.isArray(l.segments)).toBe(true);
      expect(l.tokens).toHaveLength(4);
    }
    for (const [image, name] of [[IMG_A1, 'img_a1.png'], [IMG_A2, 'img_a2.png']] as const) {
      const [src, drawn] = await Promise.all([sharp(image).metadata(), sharp(path.join(outDir, name)).metadata()]);
      expect([drawn.format, drawn.width, drawn.height]).toEqual(['png', src.width, src.height]);
    }
  });
});

describe('info', () => {
  it('summarises the text model: kind, validity, hyperparameters from the checkpoint config, tensors', async () => {
    const r = await cli(['info', text]);
    expect(r.code, r.stderr).toBe(0);
    const t = config.text_config;
    expect(r.stdout).toMatch(/^kind +PaliGemma text model/m);
    expect(r.stdout).toMatch(/^usable +yes$/m);
    expect(r.stdout).toContain(`blocks ${t.num_hidden_layers} · hidden ${t.hidden_size} · heads ${t.num_attention_heads} · kvHeads ${t.num_key_value_heads} · headDim ${t.head_dim} · feedForward ${t.intermediate_size}`);
    expect(r.stdout).toContain(`rmsNormEps ${t.rms_norm_eps}`);
    expect(r.stdout).toMatch(new RegExp(`^tokenizer +\\S+, ${config.vocab_size} tokens, bos ${config.bos_token_id}, eos ${config.eos_token_id}$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^  token_embd\\.weight +F32 +${t.hidden_size} × ${config.vocab_size} `, 'm'));
    expect(r.stdout).toMatch(/^  tokenizer\.ggml\.tokens = \[257216 × string\]$/m);
  });

  it('--json on the projector: kind, hyperparameters, and a tensor table matching the file', async () => {
    const r = await cli(['info', projector, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    const v = config.vision_config;
    expect(info.kind).toBe('projector');
    expect(info.valid).toBe(true);
    expect(info.hyperparameters).toMatchObject({
      imageSize: v.image_size, patchSize: v.patch_size, imageTokens: (v.image_size / v.patch_size) ** 2, blocks: v.num_hidden_layers,
      hidden: v.hidden_size, heads: v.num_attention_heads, feedForward: v.intermediate_size, projectionDim: config.projection_dim,
    });
    const gguf = await readGGUF(projector);
    expect(info.tensors.map((t: { name: string }) => t.name)).toEqual(gguf.tensors.map((t) => t.name));
    expect(info.totals.bytes).toBe(gguf.tensors.reduce((n, t) => n + t.size, 0));
    expect(info.totals.tensors).toBe(gguf.tensors.length);
  });

  it('knows the segmentation decoder; a GGUF that is not PaliGemma is reported unusable (exit 1)', async () => {
    const other = path.join(dir, 'other.gguf');
    const brokenText = path.join(dir, 'broken-text.gguf');
    await writeGGUF(other, { metadata: { 'general.architecture': { type: 'string', value: 'llama' } }, tensors: [] });
    await writeGGUF(brokenText, { metadata: { 'general.architecture': { type: 'string', value: 'gemma' } }, tensors: [] });
    const [dec, oth, broken] = await Promise.all([cli(['info', decoder]), cli(['info', other, '--json']), cli(['info', brokenText])]);
    expect(dec.code, dec.stderr).toBe(0);
    expect(dec.stdout).toMatch(/^kind +PaliGemma segmentation mask decoder/m);
    expect(dec.stdout).toContain('codebookSize 128');
    expect(oth.code).toBe(1);
    const o = JSON.parse(oth.stdout);
    expect([o.kind, o.valid]).toEqual(['other', false]);
    expect(o.error.message).toContain('"llama"');
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/^usable +no: .*gemma\./m);
  });

  it('quantized files: usable where the kernels run every weight type, unusable naming the one they do not', async () => {
    const q8 = path.join(dir, 'text-q8_0.gguf');
    const q41 = path.join(dir, 'text-q4_1.gguf');
    await quantizeModel(text, q8, { type: 'q8_0' });
    const gguf = await readGGUF(q8);
    // The same file with one Q8_0 weight relabelled Q4_1 (a type the kernels do not run), data as holes.
    await writeGGUF(q41, {
      metadata: gguf.metadata,
      tensors: gguf.tensors.map((t) => (t.name === 'blk.1.ffn_down.weight' ? { name: t.name, type: 'Q4_1', dims: t.dims } : { name: t.name, type: t.type, dims: t.dims })),
    });
    const [ok, bad] = await Promise.all([cli(['info', q8]), cli(['info', q41])]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^usable +yes$/m);
    expect(ok.stdout).toMatch(/^totals .*Q8_0 \d+ /m);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^usable +no: .*blk\.1\.ffn_down\.weight is Q4_1, which the kernels do not run/m);
  });

  it('a file that is not GGUF exits 1 with the GGUF error and a hint, no stack', async () => {
    const r = await cli(['info', path.join(FIXTURE_DIR, 'config.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/paligemma info: .*config\.json: not a GGUF file/);
    expect(r.stderr).toContain('hint:');
    expectNoStack(r);
  });
});
