/**
 * The HTTP server: Ollama's and OpenAI's APIs over a loaded model (`paligemma serve`).
 */
export { createServer } from './server.js';
export type { ServerOptions, PaliGemmaServer } from './server.js';
export type { AccessLogEntry } from './context.js';
export type { ServedModel } from './generate.js';
export type { TaskResult, SegmentResult } from './task-result.js';
