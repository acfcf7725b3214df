/**
 * The describe job: what producers put on the queue and what workers store as its result, and the
 * validation both sides run, so that a bad payload is refused by the producer, or fails its job
 * with a reason — never the worker.
 */
import { PaliGemmaError } from '../errors.js';
import { readFile, stat } from 'node:fs/promises';

import type { GenerationResult } from '../model/paligemma.js';
import { decodeImage } from '../server/input.js';
import type { TaskResult } from '../server/task-result.js';

/** Generation options a job may carry (JSON, so no signal or callback). */
export interface DescribeJobOptions {
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

/**
 * A describe job's data as stored in Redis: the image as base64 (or a `data:` URL), or the path
 * of an image file the worker can read (shared storage); the task prompt (default `caption en`);
 * generation options. Other top-level fields are kept and ignored (your own ids, for example).
 */
export interface DescribeJobData {
  image: string | { path: string };
  prompt?: string;
  options?: DescribeJobOptions;
  [key: string]: unknown;
}

/** A describe job's result (the job's `returnvalue`). */
export interface DescribeJobResult {
  text: string;
  tokens: number[];
  stopReason: GenerationResult['stopReason'];
  timings: GenerationResult['timings'];
  /** Size of the image after EXIF orientation. */
  image: { width: number; height: number };
  prompt: string;
  /** Parsed boxes (and masks with a mask decoder) for detect and segment prompts. */
  task?: TaskResult;
  /** The worker that ran the job (`host:pid`). */
  worker: string;
}

/** A job payload that can never succeed; the message says what is wrong. */
export class JobDataError extends PaliGemmaError<'BAD_JOB'> {
  override name = 'JobDataError';
  constructor(message: string) {
    super('BAD_JOB', message);
  }
}

const OPTION_KEYS: readonly (keyof DescribeJobOptions)[] = ['maxTokens', 'temperature', 'topK', 'topP', 'seed'];
/** Image files larger than this are refused before reading. */
const MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024;
export const DEFAULT_JOB_PROMPT = 'caption en';

/** A job's data, checked; the image is still as given. */
export interface CheckedJob {
  image: string | { path: string };
  prompt: string;
  options: DescribeJobOptions;
}

/** Checks a job's data; throws JobDataError naming what is wrong. */
export function checkJobData(data: unknown): CheckedJob {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new JobDataError('the job data must be an object { image, prompt, options }');
  const d = data as Record<string, unknown>;
  const image = d.image;
  const isPath = typeof image === 'object' && image !== null && typeof (image as { path?: unknown }).path === 'string';
  if (typeof image !== 'string' && !isPath)
    throw new JobDataError('image must be a base64 string or { path } of an image file the worker can read');
  if (isPath && (image as { path: string }).path === '') throw new JobDataError('image.path is empty');
  const prompt = d.prompt ?? DEFAULT_JOB_PROMPT;
  if (typeof prompt !== 'string' || prompt.trim() === '') throw new JobDataError('prompt must be a non-empty string, such as "caption en"');
  const options = d.options ?? {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new JobDataError('options must be an object');
  for (const key of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) throw new JobDataError(`options.${key} is not a job option (${OPTION_KEYS.join(', ')})`);
  }
  return { image: image as CheckedJob['image'], prompt, options: options as DescribeJobOptions };
}

/** The image bytes of a checked job. */
export async function jobImage(image: CheckedJob['image']): Promise<Buffer> {
  if (typeof image === 'string') {
    try {
      return decodeImage(image, 'image');
    } catch (err) {
      throw new JobDataError((err as Error).message);
    }
  }
  const file = image.path;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new JobDataError(`image.path ${file} is not a file`);
    if (info.size > MAX_IMAGE_FILE_BYTES) throw new JobDataError(`image.path ${file} has ${info.size} bytes, more than the limit of ${MAX_IMAGE_FILE_BYTES}`);
    return await readFile(file);
  } catch (err) {
    if (err instanceof JobDataError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new JobDataError(`cannot read image.path ${file}: ${code === 'ENOENT' ? 'no such file on this worker' : (err as Error).message}`);
  }
}
