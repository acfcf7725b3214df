/**
 * Scale-out on BullMQ (an optional peer dependency): workers that run describe jobs, and the
 * producer helper services use to enqueue them.
 */
export { runWorker, redisConnection } from './worker.js';
export type { WorkerOptions, WorkerLogEntry, QueueWorker } from './worker.js';
export { enqueueDescribe, DESCRIBE_JOB } from './producer.js';
export type { DescribeJobInput, QueueLike } from './producer.js';
export { JobDataError } from './job.js';
export type { DescribeJobData, DescribeJobOptions, DescribeJobResult } from './job.js';
export { MissingDependencyError } from './errors.js';
