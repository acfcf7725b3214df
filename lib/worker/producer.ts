/**
 * The producer side: `enqueueDescribe(queue, { image, prompt, options })` puts a describe job on a
 * BullMQ queue, checked the way workers check it, so a bad payload fails in the producer.
 */
import { checkJobData, JobDataError, type DescribeJobData, type DescribeJobOptions } from './job.js';

/** What a describe job is made of; the image may be bytes, which are sent as base64. */
export interface DescribeJobInput {
  /** Encoded image bytes, base64 (or a `data:` URL), or `{ path }` of a file every worker can read. */
  image: Uint8Array | string | { path: string };
  /** The task prompt, e.g. `caption en`, `detect cat` (default `caption en`). */
  prompt?: string;
  options?: DescribeJobOptions;
}

/** The part of a BullMQ `Queue` this needs (so the package's types do not depend on bullmq). */
export interface QueueLike<J> {
  add(name: string, data: DescribeJobData, options?: Record<string, unknown>): Promise<J>;
}

/** The job name describe jobs are added under. */
export const DESCRIBE_JOB = 'describe';

/**
 * Adds a describe job to `queue` (a BullMQ `Queue`) and returns the job. `jobOptions` are BullMQ's
 * (`attempts`, `removeOnComplete`, `priority`, `jobId`…). Wait for the result with
 * `job.waitUntilFinished(queueEvents)`; it is a {@link DescribeJobResult}.
 */
export async function enqueueDescribe<J>(queue: QueueLike<J>, input: DescribeJobInput, jobOptions?: Record<string, unknown>): Promise<J> {
  if (typeof input !== 'object' || input === null) throw new JobDataError('enqueueDescribe(queue, input): input must be an object { image, prompt, options }');
  const image = input.image instanceof Uint8Array ? Buffer.from(input.image.buffer, input.image.byteOffset, input.image.byteLength).toString('base64') : input.image;
  const data: DescribeJobData = { image: image as DescribeJobData['image'] };
  if (input.prompt !== undefined) data.prompt = input.prompt;
  if (input.options !== undefined) data.options = input.options;
  checkJobData(data);
  return queue.add(DESCRIBE_JOB, data, jobOptions);
}
