/**
 * The task commands: `paligemma describe|caption|ocr|answer|detect|segment <image…>`. Each builds
 * its prompt from its options (so bad labels or languages fail before the model loads), loads the
 * model once, and runs every image in turn. Detection and segmentation parse the model's text with
 * the library's pure parsers, which keeps the raw text, the timings and the skipped pieces at hand
 * for `--json`.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import type { Command } from './command.js';
import { parseArgs, UsageError, type Options, type OptionSpecs } from './args.js';
import { CliError, EXIT, reportError } from './errors.js';
import { formatDetection, formatSegment, jsonFailure, jsonResult } from './output.js';
import { StatusLine, formatBytes, formatMs } from './progress.js';
import type { DrawObject } from './draw.js';
import { answerPrompt, captionPrompt, detectPrompt, ocrPrompt, segmentPrompt, type CaptionDetail } from '../tasks/prompts.js';
import { MAX_IMAGE_BYTES } from '../image/input.js';
import { checkFileArgument, readFileArgument } from './files.js';
import { parseDetections } from '../tasks/parse.js';
import type { GenerationResult, LoadModelOptions, PaliGemma } from '../model/paligemma.js';
import type { SegmentationDecoder } from '../tasks/segmentation.js';
import type { SimdVariantName } from '../native.js';

/** big_vision's mask decoder for `segment` (a public bucket). */
const VAE_OID_URL = 'https://storage.googleapis.com/big_vision/paligemma/vae-oid.npz';

/** For the hint when a directory is given as an image. */
const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif'];

/** Options every task command takes: where the model is, how to run it, how to generate. */
export const COMMON_OPTIONS = {
  model: { type: 'string', short: 'm', value: 'FILE' },
  projector: { type: 'string', value: 'FILE' },
  ollama: { type: 'string', value: 'NAME[:TAG]' },
  'ollama-models': { type: 'string', value: 'DIR' },
  'max-tokens': { type: 'integer', min: 1 },
  temperature: { type: 'number', min: 0 },
  'top-k': { type: 'integer', min: 0 },
  'top-p': { type: 'number', min: 0, max: 1 },
  seed: { type: 'integer' },
  threads: { type: 'integer', min: 1, max: 1024 },
  simd: { type: 'string', value: 'NAME' },
  'max-pixels': { type: 'integer', min: 1 },
  json: { type: 'boolean' },
} as const satisfies OptionSpecs;

/** Options some task commands take. */
const TASK_OPTIONS = {
  prompt: { type: 'string', short: 'p', value: 'TEXT' },
  lang: { type: 'string', value: 'CODE' },
  detail: { type: 'string', choices: ['short', 'long', 'raw'] },
  question: { type: 'string', short: 'q', value: 'TEXT' },
  labels: { type: 'string', short: 'l', value: 'A,B,…' },
  label: { type: 'string', short: 'l', value: 'LABEL' },
  segmentation: { type: 'string', value: 'FILE' },
  draw: { type: 'string', short: 'o', value: 'FILE|DIR|PATTERN' },
} as const satisfies OptionSpecs;

type TaskOptionName = keyof typeof TASK_OPTIONS;
type AllOptions = Options<typeof COMMON_OPTIONS & typeof TASK_OPTIONS>;

/** What one task command is. */
interface Task {
  name: 'describe' | 'caption' | 'ocr' | 'answer' | 'detect' | 'segment';
  summary: string;
  /** The synopsis after `paligemma <name> <image…>`. */
  synopsis: string;
  /** Help lines for the task's own options. */
  help: string[];
  extras: TaskOptionName[];
  /** How the output is read: free text, boxes, or boxes with masks. */
  kind: 'text' | 'detect' | 'segment';
  /** The prompt for these options; throws UsageError or TaskError on bad ones. */
  prompt(o: AllOptions): string;
}

const DRAW_HELP = [
  '  -o, --draw OUT       draw the boxes (and masks) on the image and write it to OUT (.png, .jpg,',
  '                       .webp); for several images OUT is a directory (existing, or ending in /),',
  '                       which gets <name>.png per image, or a pattern such as out/{name}-boxes.png',
  '                       ({name} = the image file name without extension)',
];

const TASKS: Task[] = [
  {
    name: 'describe',
    summary: 'Run PaliGemma on images with any task prompt and print the generated text',
    synopsis: '[--prompt TEXT]',
    help: ['  -p, --prompt TEXT    the task prefix (default "caption en"), e.g. "describe de", "ocr",', '                       "answer en what is this?", "detect cat ; dog"'],
    extras: ['prompt'],
    kind: 'text',
    prompt: (o) => o.prompt ?? 'caption en',
  },
  {
    name: 'caption',
    summary: 'Caption images',
    synopsis: '[--lang CODE] [--detail short|long|raw]',
    help: [
      '  --lang CODE          language of the caption (default en)',
      '  --detail LEVEL       short: one sentence (default); long: a longer description;',
      '                       raw: alt-text style (best with the pre-trained checkpoints)',
    ],
    extras: ['lang', 'detail'],
    kind: 'text',
    prompt: (o) => captionPrompt({ lang: o.lang, detail: o.detail as CaptionDetail | undefined }),
  },
  {
    name: 'ocr',
    summary: 'Read the text in images',
    synopsis: '',
    help: [],
    extras: [],
    kind: 'text',
    prompt: () => ocrPrompt(),
  },
  {
    name: 'answer',
    summary: 'Answer a question about images',
    synopsis: '--question TEXT [--lang CODE]',
    help: [
      '  -q, --question TEXT  the question (required; every positional argument is an image, so',
      '                       `paligemma answer *.jpg -q "how many people?"` asks about each)',
      '  --lang CODE          language of the answer (default en)',
    ],
    extras: ['question', 'lang'],
    kind: 'text',
    prompt: (o) => {
      if (o.question === undefined) throw new UsageError('missing --question TEXT');
      return answerPrompt(o.question, o.lang);
    },
  },
  {
    name: 'detect',
    summary: 'Find objects in images: labelled boxes in pixels of the image',
    synopsis: '--labels A,B [--draw OUT]',
    help: [
      '  -l, --labels A,B     what to look for, comma-separated (e.g. "cat,red car")',
      ...DRAW_HELP,
      '',
      'Prints one line per object: label  [x0, y0, x1, y1] (pixels, (x0, y0) top left).',
    ],
    extras: ['labels', 'draw'],
    kind: 'detect',
    prompt: (o) => {
      if (o.labels === undefined) throw new UsageError('missing --labels A,B');
      return detectPrompt(o.labels.split(','));
    },
  },
  {
    name: 'segment',
    summary: 'Segment objects in images: boxes and pixel masks',
    synopsis: '--label LABEL --segmentation vae-oid.npz [--draw OUT]',
    help: [
      '  -l, --label LABEL    what to segment',
      '  --segmentation FILE  the mask decoder: vae-oid.npz from big_vision',
      `                       (${VAE_OID_URL})`,
      '                       or the GGUF `paligemma convert vae-oid.npz --out DIR` writes',
      ...DRAW_HELP,
      '',
      'Prints one line per object: label  [x0, y0, x1, y1]  N px (the mask\'s area).',
      'With --json, masks are run-length encoded: { width, height, order: "row-major", counts },',
      'alternating runs of 0s and 1s over the pixels row by row, starting with a (maybe empty) 0-run.',
    ],
    extras: ['label', 'segmentation', 'draw'],
    kind: 'segment',
    prompt: (o) => {
      if (o.label === undefined) throw new UsageError('missing --label LABEL');
      return segmentPrompt(o.label);
    },
  },
];

const COMMON_HELP = [
  'Model (one of):',
  '  -m, --model FILE     the text GGUF, with --projector FILE (the mmproj GGUF)',
  '  --ollama NAME[:TAG]  a model pulled with Ollama (its projector can be overridden with',
  '                       --projector); --ollama-models DIR if the store is not in',
  '                       $OLLAMA_MODELS or ~/.ollama/models',
  '',
  'Generation:',
  '  --max-tokens N       stop after N tokens (default 100)',
  '  --temperature T      0 = greedy (default); > 0 samples, with --top-k K, --top-p P, --seed S',
  '',
  'Running:',
  '  --threads N          worker threads (default: one per physical core)',
  '  --simd NAME          force a kernel set (`paligemma features` lists them)',
  '  --max-pixels N       refuse larger images (default 100000000)',
  '  --json               one JSON object per image and line: image, width, height, prompt, text,',
  '                       tokens, stopReason, timings (+ detections / segments, skipped); a failed',
  '                       image gets { image, error }',
  '',
  'Images: file paths, or - for standard input. Text streams to the terminal as it is generated;',
  'progress goes to stderr when it is a terminal. With several images, each output line starts',
  'with "<image>: ". Exit status: 0 ok, 1 failure (any image), 2 bad usage, 130 interrupted.',
];

function usage(task: Task): string {
  return [
    `paligemma ${task.name} <image…> (--model FILE --projector FILE | --ollama NAME) ${task.synopsis}`.trimEnd(),
    ...(task.help.length ? ['', ...task.help] : []),
    '',
    ...COMMON_HELP,
  ].join('\n');
}

async function readImage(image: string): Promise<Buffer> {
  if (image === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  return readFileArgument('cannot read image', image, MAX_IMAGE_BYTES);
}

/** Checks the images exist before the model loads (a typo should not cost a model load). */
async function checkImages(images: readonly string[]): Promise<void> {
  if (images.length === 0) throw new UsageError('missing <image>');
  if (images.filter((i) => i === '-').length > 1) throw new UsageError('standard input (-) can be read only once');
  for (const image of images) {
    if (image !== '-') await checkFileArgument('cannot read image', image, 'an image file', IMAGE_EXTENSIONS);
  }
}

/** The mask decoder is a separate download; say where to get it in the command line's terms. */
function missingDecoder(): CliError {
  return new CliError(
    `segment needs the mask decoder, a separate file: download vae-oid.npz from ${VAE_OID_URL} (big_vision's PaliGemma assets)`,
    'then run again with --segmentation vae-oid.npz',
  );
}

/** Checks the model files named on the command line before anything loads. */
async function checkModelFiles(o: AllOptions): Promise<void> {
  if (o.model !== undefined) await checkFileArgument('--model', o.model, 'a GGUF file', ['.gguf']);
  if (o.projector !== undefined) await checkFileArgument('--projector', o.projector, 'a GGUF file', ['.gguf']);
  if (o.segmentation !== undefined) await checkFileArgument('--segmentation', o.segmentation, 'a mask decoder file', ['.npz', '.gguf']);
}

/** Loads the model named by the options (plus `extra` load options), with a status line; the caller disposes it. */
export async function openModel(
  o: AllOptions,
  status: StatusLine,
  extra: Pick<LoadModelOptions, 'maxSequences' | 'segmentation'> = {},
): Promise<PaliGemma> {
  const files = [o.model, o.projector].filter((f): f is string => f !== undefined);
  const sizes = await Promise.all(files.map((f) => stat(f).then((s) => s.size, () => 0)));
  const bytes = sizes.reduce((a, b) => a + b, 0);
  const source = o.ollama !== undefined ? `Ollama model ${o.ollama}` : files.map((f) => path.basename(f)).join(' + ');
  status.update(`loading ${source}: validating the files${bytes ? ` and mapping ${formatBytes(bytes)}` : ''}…`, true);
  const t0 = performance.now();
  const { loadModel } = await import('../model/paligemma.js');
  const model = await loadModel({
    model: o.model,
    projector: o.projector,
    ollama: o.ollama,
    ollamaModelsDir: o['ollama-models'],
    requireProjector: true,
    threads: o.threads,
    simd: o.simd as SimdVariantName | undefined,
    maxPixels: o['max-pixels'],
    ...extra,
    onProgress: (p) => {
      const done = { validated: 'validated the headers', tokenizer: 'built the tokenizer', mapped: 'mapped the weights' }[p.phase];
      status.update(`loading ${source}: ${done} (${formatBytes(p.bytes)}, ${formatMs(p.elapsedMs)})…`);
    },
  });
  const { simd, threads } = model.runtime;
  status.note(`loaded ${source} in ${formatMs(performance.now() - t0)} (${simd}, ${threads} thread${threads === 1 ? '' : 's'})`);
  return model;
}

/** Runs one task on every image; see {@link usage}. */
async function runTask(task: Task, args: string[]): Promise<number> {
  const specs: OptionSpecs = { ...COMMON_OPTIONS };
  for (const name of task.extras) specs[name] = TASK_OPTIONS[name];
  const { positional: images, options } = parseArgs(args, specs);
  const o = options as AllOptions;
  const prompt = task.prompt(o);
  await checkImages(images);
  const targets = o.draw === undefined ? images.map(() => undefined) : (await import('./draw.js')).drawTargets(o.draw, images);
  if (o.model !== undefined && o.ollama !== undefined) throw new UsageError('give --model or --ollama, not both');
  if (o.model === undefined && o.ollama === undefined) throw new UsageError('missing the model: give --model FILE --projector FILE, or --ollama NAME');
  if (task.kind === 'segment' && o.segmentation === undefined) throw missingDecoder();
  await checkModelFiles(o);

  const status = new StatusLine();
  const controller = new AbortController();
  const interrupt = () => controller.abort();
  process.once('SIGINT', interrupt);
  let decoder: SegmentationDecoder | undefined;
  let model: PaliGemma | undefined;
  try {
    if (o.segmentation !== undefined) {
      status.update(`loading the segmentation decoder ${path.basename(o.segmentation)}…`, true);
      const { SegmentationDecoder } = await import('../tasks/segmentation.js');
      decoder = await SegmentationDecoder.load(o.segmentation, { simd: o.simd as SimdVariantName | undefined });
    }
    model = await openModel(o, status);
    let failures = 0;
    for (const [i, image] of images.entries()) {
      try {
        const bytes = await readImage(image);
        await runImage({ task, o, prompt, model, decoder, image, bytes, draw: targets[i], several: images.length > 1, status, signal: controller.signal });
      } catch (err) {
        // A bad image fails alone; the others still run. Anything else stops the run.
        if (!(err instanceof CliError || (err instanceof Error && err.name === 'ImageError'))) throw err;
        status.clear();
        failures++;
        if (o.json) console.log(JSON.stringify(jsonFailure(image, err)));
        reportError(`${task.name} ${image === '-' ? 'stdin' : image}`, err);
      }
    }
    return failures > 0 ? EXIT.FAILURE : EXIT.OK;
  } finally {
    status.clear();
    process.off('SIGINT', interrupt);
    await model?.dispose();
  }
}

interface ImageRun {
  task: Task;
  o: AllOptions;
  prompt: string;
  model: PaliGemma;
  decoder: SegmentationDecoder | undefined;
  image: string;
  bytes: Buffer;
  draw: string | undefined;
  several: boolean;
  status: StatusLine;
  signal: AbortSignal;
}

/** One image: generate (streaming text to a terminal), parse, print, draw. */
async function runImage(run: ImageRun): Promise<void> {
  const { task, o, status } = run;
  const name = run.image === '-' ? 'stdin' : path.basename(run.image);
  const prefix = run.several ? `${run.image}: ` : '';
  // Text streams only to a terminal: for pipes and files, whole results are easier to consume.
  const stream = task.kind === 'text' && !o.json && process.stdout.isTTY === true;
  let count = 0;
  let first = 0;
  status.update(`${name}: encoding the image and reading the prompt…`, true);
  const r: GenerationResult = await run.model.describe(run.bytes, {
    prompt: run.prompt,
    maxTokens: o['max-tokens'],
    temperature: o.temperature,
    topK: o['top-k'],
    topP: o['top-p'],
    seed: o.seed,
    signal: run.signal,
    onToken: (piece) => {
      count++;
      if (count === 1) first = performance.now();
      if (stream) {
        if (count === 1) {
          status.clear();
          process.stdout.write(prefix);
        }
        process.stdout.write(piece);
        return;
      }
      const seconds = (performance.now() - first) / 1000;
      status.update(`${name}: generating, ${count} tokens${seconds > 0 ? `, ${((count - 1) / seconds).toFixed(1)} tokens/s` : ''}`);
    },
  });
  status.clear();

  let objects: DrawObject[] = [];
  if (task.kind === 'text') {
    if (o.json) console.log(JSON.stringify(jsonResult(run.image, run.prompt, r)));
    else if (stream) process.stdout.write(count === 0 ? `${prefix}\n` : '\n');
    else console.log(`${prefix}${r.text}`);
  } else if (task.kind === 'detect') {
    const { detections, skipped } = parseDetections(r.text, r.image!);
    objects = detections;
    if (o.json) console.log(JSON.stringify(jsonResult(run.image, run.prompt, r, { detections, skipped })));
    else printObjects(detections.map(formatDetection), skipped, prefix, name);
  } else {
    const { decodeSegmentation } = await import('../tasks/segmentation.js');
    const { segments, skipped } = await decodeSegmentation(r.text, r.image!, run.decoder!);
    objects = segments;
    if (o.json) console.log(JSON.stringify(jsonResult(run.image, run.prompt, r, { segments, skipped })));
    else printObjects(segments.map(formatSegment), skipped, prefix, name);
  }
  const t = r.timings;
  status.note(
    `${name}: ${t.generatedTokens} tokens, ${t.tokensPerSecond.toFixed(1)} tokens/s · image ${formatMs(t.preprocessMs + t.visionMs)} · prompt ${formatMs(t.prefillMs)} · generation ${formatMs(t.decodeMs)}`,
  );
  if (run.draw) {
    const { drawObjects } = await import('./draw.js');
    await drawObjects(run.bytes, objects, run.draw);
    if (!o.json) status.note(`${name}: drew ${objects.length} object${objects.length === 1 ? '' : 's'} into ${run.draw}`);
  }
}

/** Plain output of detect/segment: one line per object; what was skipped or not found goes to stderr. */
function printObjects(lines: string[], skipped: { text: string; reason: string }[], prefix: string, name: string): void {
  for (const line of lines) console.log(`${prefix}${line}`);
  const clip = (text: string) => ([...text].length > 60 ? `${[...text].slice(0, 57).join('')}…` : text);
  for (const s of skipped) console.error(`paligemma: ${name}: skipped part of the output ("${clip(s.text)}"): ${s.reason}`);
  if (lines.length === 0 && skipped.length === 0) console.error(`paligemma: ${name}: nothing found`);
}

function taskCommand(task: Task): Command {
  return { summary: task.summary, usage: usage(task), run: (args) => runTask(task, args) };
}

export const [describe, caption, ocr, answer, detect, segment] = TASKS.map(taskCommand) as [Command, Command, Command, Command, Command, Command];
