/**
 * The CLI in process: help and argument checking of every command through main() (fast, no model),
 * the option parser, the JSON mask encoding, where --draw writes, and what it draws (checked pixel
 * by pixel against blending arithmetic written here). test/cli.test.ts runs the real process.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';

import { parseArgs, UsageError } from '../lib/cli/args.js';
import { drawObjects, drawTargets, escapeXml, labelColour } from '../lib/cli/draw.js';
import { jsonResult, maskToRle } from '../lib/cli/output.js';
import { shortestF32 } from '../lib/cli/info.js';
import type { GenerationResult } from '../lib/model/paligemma.js';
import { readGGUF } from '../lib/gguf/index.js';
import { npzBytes } from './helpers/npz.js';
import { randomVae } from './helpers/vae.js';
import { runCli } from './helpers/run-cli.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'paligemma-cli-parts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = runCli;

const COMMANDS = ['describe', 'caption', 'ocr', 'answer', 'detect', 'segment', 'info', 'pull', 'convert', 'bench', 'features'];
const TASKS = COMMANDS.slice(0, 6);

describe('main', () => {
  it.each(COMMANDS)('%s --help prints its usage and exits 0', async (name) => {
    const r = await run([name, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: paligemma ${name}`);
    if (TASKS.includes(name)) {
      for (const option of ['--model FILE', '--projector', '--ollama NAME[:TAG]', '--json', '--max-tokens N', '--threads N']) expect(r.stdout).toContain(option);
    }
  });

  it('documents the task options where they belong', async () => {
    const help: Record<string, string> = {};
    for (const t of TASKS) help[t] = (await run([t, '--help'])).stdout; // one at a time: run() swaps console methods
    expect(help.describe).toContain('--prompt TEXT');
    expect(help.caption).toContain('--detail');
    expect(help.answer).toContain('--question TEXT');
    expect(help.detect).toContain('--labels A,B');
    expect(help.detect).toContain('{name}');
    expect(help.segment).toContain('--segmentation FILE');
    expect(help.segment).toContain('order: "row-major"');
    expect(help.ocr).not.toContain('--draw');
  });

  // No model is needed for any of these: arguments are checked first.
  const fake = ['--model', 'none.gguf', '--projector', 'none-mmproj.gguf'];
  const img = 'none.png';
  const usage: [string[], string][] = [
    [['detect', img, ...fake], 'missing --labels'],
    [['segment', img, ...fake], 'missing --label LABEL'],
    [['answer', img, ...fake], 'missing --question TEXT'],
    [['segment', img, ...fake, '--labels', 'cat'], 'unknown option --labels'],
    [['caption', img, ...fake, '--draw', 'x.png'], 'unknown option --draw'],
    [['ocr', img, ...fake, '--prompt', 'x'], 'unknown option --prompt'],
    [['caption', img, ...fake, '--detail', 'huge'], "--detail must be one of short, long, raw, got 'huge'"],
    [['describe', ...fake], 'missing <image>'],
    [['describe', '-', '-', ...fake], 'standard input (-) can be read only once'],
    [['info'], 'missing <file.gguf>'],
    [['info', 'a.gguf', '--tensors'], 'unknown option --tensors'],
    [['convert', 'dir'], 'missing --out <dir>'],
    [['features', 'extra'], 'unexpected argument extra'],
    [['pull'], 'missing <name>'],
    [['pull', 'a', 'b'], 'unexpected argument b'],
    [['pull', 'x', '--outtype', 'q4'], '--outtype must be one of f32, f16, bf16'],
    // Flags carried over from llama.cpp get their name here, or why there is none.
    [['caption', img, '--mmproj', 'p.gguf'], "unknown option --mmproj (--mmproj is llama.cpp's name: use --projector)"],
    [['caption', img, ...fake, '-ngl', '99'], 'unknown option -ngl (paligemma runs on the CPU only'],
    [['caption', img, ...fake, '-t', '4'], "use --threads"],
    [['caption', img, ...fake, '--temp', '0.7'], "use --temperature"],
    [['caption', img, ...fake, '--image', img], 'images are positional arguments'],
    [['convert', 'dir', '--outfile', 'x.gguf'], "use --out"],
    [['detect', img, ...fake, '--label', 'cat'], 'unknown option --label (did you mean --labels?)'],
  ];
  it.each(usage)('%j exits 2: %s', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain(`usage: paligemma ${args[0]}`);
  });

  it('checks images, the model source, --draw and the decoder before loading anything', async () => {
    const image = path.join(tmp, 'image.png');
    await sharp({ create: { width: 4, height: 4, channels: 3, background: 'red' } }).png().toFile(image);
    const gguf = path.join(tmp, 'model.gguf');
    writeFileSync(gguf, 'not really a model: only its being a file is checked here');
    const cases: [string[], number, string][] = [
      [['caption', path.join(tmp, 'nope.png'), ...fake], 1, 'cannot read image'],
      [['caption', tmp, ...fake], 1, 'is a directory, not an image file'],
      [['caption', image, '--model', tmp, '--projector', 'p.gguf'], 1, `--model ${tmp}: is a directory, not a GGUF file`],
      [['caption', image, '--model', gguf, '--projector', 'none.gguf'], 1, '--projector none.gguf: no such file'],
      [['caption', image], 2, 'missing the model'],
      [['caption', image, ...fake, '--ollama', 'x'], 2, 'not both'],
      [['detect', image, image, ...fake, '--labels', 'a', '--draw', 'one.png'], 2, 'pattern with {name}'],
      [['detect', image, ...fake, '--labels', 'a', '--draw', 'one.gif'], 2, 'not one.gif'],
      [['detect', image, ...fake, '--labels', 'a;b'], 1, 'hint: labels are separated by commas'],
      [['caption', image, ...fake, '--lang', 'English'], 1, 'hint: --lang takes a language code'],
      [['segment', image, ...fake, '--label', 'cat'], 1, 'hint: then run again with --segmentation vae-oid.npz'],
    ];
    for (const [args, code, message] of cases) {
      const r = await run(args);
      expect([r.code, r.stderr], args.join(' ')).toEqual([code, expect.stringContaining(message)]);
    }
    // The directory hint names the model files inside it; the decoder hint speaks of flags, not of the library API.
    const dir = path.join(tmp, 'models');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'tiny-f16.gguf'), '');
    const inDir = await run(['caption', image, '--model', dir, '--projector', 'p.gguf']);
    expect(inDir.stderr).toContain(`hint: it holds ${path.join(dir, 'tiny-f16.gguf')}: give one of those`);
    const segment = await run(['segment', image, ...fake, '--label', 'cat']);
    expect(segment.stderr).toContain('https://storage.googleapis.com/big_vision/paligemma/vae-oid.npz');
    expect(segment.stderr).not.toContain('loadModel');
  });

  it('info says a directory is a directory', async () => {
    const r = await run(['info', tmp]);
    expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(`${tmp}: is a directory, not a GGUF file`)]);
  });

  it('lists bench only where the suite is (a source checkout), not in the installed package', async () => {
    expect((await run(['--help'])).stdout).toMatch(/^  bench /m);
    // The package as installed: lib/ without bench/ beside it.
    const installed = path.join(tmp, 'installed');
    mkdirSync(installed);
    cpSync(path.join(projectRoot, 'lib'), path.join(installed, 'lib'), { recursive: true });
    cpSync(path.join(projectRoot, 'package.json'), path.join(installed, 'package.json'));
    symlinkSync(path.join(projectRoot, 'node_modules'), path.join(installed, 'node_modules'));
    const help = execFileSync(process.execPath, ['--import', 'tsx', path.join(installed, 'lib/cli/main.ts'), '--help'], { cwd: projectRoot, encoding: 'utf8' });
    expect(help).toMatch(/^  pull /m);
    expect(help).not.toMatch(/^  bench /m);
  });
});

describe('convert vae-oid.npz', () => {
  it('writes the decoder as <out>/<name>.gguf with the same tensors, and refuses --outtype', async () => {
    const tensors = randomVae({ codes: 128, dim: 8, width: 4, upsample: [4, 4, 4, 2] }, 11);
    const npz = path.join(tmp, 'vae-oid.npz');
    writeFileSync(npz, npzBytes(new Map([...tensors].map(([name, a]) => [name, { shape: a.shape, data: a.data }]))));
    const out = path.join(tmp, 'decoder-out');
    const r = await run(['convert', npz, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(path.join(out, 'vae-oid.gguf'));
    const gguf = await readGGUF(r.stdout);
    for (const [name, a] of tensors) {
      const t = gguf.tensorsByName.get(name)!;
      expect([t.type, t.dims], name).toEqual(['F32', [...a.shape].reverse()]);
    }
    expect(gguf.tensors).toHaveLength(tensors.size);
    const refused = await run(['convert', npz, '--out', out, '--outtype', 'f16']);
    expect([refused.code, refused.stderr]).toEqual([2, expect.stringContaining('--outtype does not apply')]);
  });
});

const SPECS = {
  model: { type: 'string', short: 'm' },
  json: { type: 'boolean' },
  'max-tokens': { type: 'integer', min: 1 },
  'top-p': { type: 'number', min: 0, max: 1 },
  detail: { type: 'string', choices: ['short', 'long'] },
} as const;

describe('parseArgs', () => {
  it('reads long, short, --name=value, flags and positionals, and stops at --', () => {
    const r = parseArgs(['a.png', '-m', 'x.gguf', '--max-tokens=5', '--json', '--top-p', '0.5', 'b.png', '--', '--json', '-'], SPECS);
    expect(r.options).toEqual({ model: 'x.gguf', 'max-tokens': 5, json: true, 'top-p': 0.5 });
    expect(r.positional).toEqual(['a.png', 'b.png', '--json', '-']);
  });

  it('takes a value that starts with a dash when the option needs one', () => {
    expect(parseArgs(['--model', '-odd-name.gguf'], SPECS).options.model).toBe('-odd-name.gguf');
  });

  const bad: [string[], RegExp][] = [
    [['--lables', 'cat'], /unknown option --lables/],
    [['--maxTokens', '3'], /unknown option --maxTokens \(did you mean --max-tokens\?\)/],
    [['--Model', 'x'], /did you mean --model\?/],
    [['--constructor'], /unknown option --constructor/],
    [['-x'], /^unknown option -x$/],
    [['--model'], /--model needs a value/],
    [['--model='], /--model needs a value/],
    [['--json=yes'], /--json is a flag/],
    [['--max-tokens', 'many'], /--max-tokens must be an integer, got 'many'/],
    [['--max-tokens', '2.5'], /must be an integer/],
    [['--max-tokens', '0'], /--max-tokens must be an integer ≥ 1, got 0/],
    [['--top-p', '1.5'], /--top-p must be a number in 0\.\.1/],
    [['--top-p', 'NaN'], /must be a number/],
    [['--detail', 'huge'], /--detail must be one of short, long, got 'huge'/],
  ];
  it.each(bad)('rejects %j with a UsageError naming the option', (args, message) => {
    expect(() => parseArgs(args, SPECS)).toThrow(UsageError);
    expect(() => parseArgs(args, SPECS)).toThrow(message);
  });
});

/** Decodes the documented RLE: alternating 0-runs and 1-runs, row-major, starting with zeros. */
function decodeRle(counts: number[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let i = 0;
  counts.forEach((n, k) => {
    out.fill(k % 2, i, i + n);
    i += n;
  });
  expect(i).toBe(length);
  return out;
}

describe('mask RLE', () => {
  it('round-trips masks that start inside, outside, are empty or full', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const masks = [new Uint8Array(12), new Uint8Array(12).fill(1), Uint8Array.from({ length: 35 }, () => (random() < 0.4 ? 1 : 0))];
    masks.push(Uint8Array.from([1, 1, 0, 0, 0, 1]));
    for (const mask of masks) {
      const rle = maskToRle(mask, mask.length, 1);
      expect(decodeRle(rle.counts, mask.length)).toEqual(mask);
    }
    expect(maskToRle(Uint8Array.from([1, 1, 0, 0, 0, 1]), 3, 2).counts).toEqual([0, 2, 3, 1]);
  });

  it('puts segments into the JSON line with an area and an RLE mask', () => {
    const mask = Uint8Array.from([0, 1, 1, 0, 0, 1]); // 3 × 2
    const r = { text: 't', tokens: [1], stopReason: 'eos', timings: {}, image: { width: 3, height: 2 } } as unknown as GenerationResult;
    const line = jsonResult('a.png', 'segment cat', r, { segments: [{ label: 'cat', box: { x0: 0, y0: 0, x1: 3, y1: 2 }, codes: [1], mask }], skipped: [] });
    const s = JSON.parse(JSON.stringify(line)).segments[0];
    expect(s.area).toBe(3);
    expect(s.mask).toEqual({ width: 3, height: 2, order: 'row-major', counts: [1, 2, 2, 1] });
    expect(decodeRle(s.mask.counts, 6)).toEqual(mask);
  });
});

describe('drawTargets', () => {
  it('uses OUT for one image, a directory or a {name} pattern for several', () => {
    expect(drawTargets('out.png', ['a/b.jpg'])).toEqual(['out.png']);
    const dir = path.join(tmp, 'existing');
    mkdirSync(dir);
    expect(drawTargets(dir, ['x/a.jpg', 'y/b.png'])).toEqual([path.join(dir, 'a.png'), path.join(dir, 'b.png')]);
    expect(drawTargets('new/', ['a.jpg', '-'])).toEqual([path.join('new', 'a.png'), path.join('new', 'stdin.png')]);
    expect(drawTargets('o/{name}-boxes.webp', ['p/a.jpg', 'q/b.jpg'])).toEqual(['o/a-boxes.webp', 'o/b-boxes.webp']);
  });

  it('refuses ambiguous or unwritable targets', () => {
    expect(() => drawTargets('out.png', ['a.jpg', 'b.jpg'])).toThrow(/directory or a pattern with \{name\}/);
    expect(() => drawTargets('out.gif', ['a.jpg'])).toThrow(/--draw writes .png, .jpg, .jpeg, .webp files, not out.gif/);
    expect(() => drawTargets('o/', ['x/a.jpg', 'y/a.png'])).toThrow(/twice/);
  });
});

describe('drawObjects', () => {
  it('escapes labels for SVG', () => {
    expect(escapeXml(`<a & "b" 'c'>`)).toBe('&lt;a &amp; &quot;b&quot; &apos;c&apos;&gt;');
  });

  it('blends masks over the image, strokes boxes, leaves other pixels alone, keeps the size', async () => {
    const width = 120;
    const height = 90;
    const grey = 100;
    const image = await sharp({ create: { width, height, channels: 3, background: { r: grey, g: grey, b: grey } } }).png().toBuffer();
    const mask = new Uint8Array(width * height);
    for (let y = 40; y < 60; y++) for (let x = 30; x < 70; x++) mask[y * width + x] = 1;
    const out = path.join(tmp, 'drawn.png');
    // The label "<cat & co>" would break the SVG if it were not escaped.
    const size = await drawObjects(image, [{ label: '<cat & co>', box: { x0: 20, y0: 30, x1: 80, y1: 70 }, mask }], out);
    expect(size).toEqual({ width, height });
    const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([width, height]);
    const px = (x: number, y: number) => Array.from(data.subarray((y * width + x) * info.channels, (y * width + x) * info.channels + 3));
    const colour = labelColour('<cat & co>');
    // Inside the mask: "over" compositing with alpha 110/255, as the mask layer is built.
    const alpha = 110 / 255;
    const blended = colour.map((c) => grey * (1 - alpha) + c * alpha);
    px(50, 50).forEach((v, i) => expect(Math.abs(v - blended[i]!)).toBeLessThanOrEqual(1.5)); // ±1 level of 8-bit rounding, +0.5 for the order of operations
    // Far from the box and its label: untouched.
    expect(px(110, 85)).toEqual([grey, grey, grey]);
    // On the box's bottom edge (stroke 2 px centred on y = 70, away from the label tag): the colour.
    px(50, 70).forEach((v, i) => expect(Math.abs(v - colour[i]!)).toBeLessThanOrEqual(2)); // antialiasing at stroke edges
  });
});

describe('shortestF32', () => {
  it('prints float32 values as their shortest decimal', () => {
    expect(shortestF32(Math.fround(1e-6))).toBe(1e-6);
    expect(shortestF32(Math.fround(0.1))).toBe(0.1);
    expect(shortestF32(10000)).toBe(10000);
    expect(Math.fround(shortestF32(Math.fround(Math.PI)))).toBe(Math.fround(Math.PI));
  });
});
