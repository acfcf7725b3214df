/**
 * One HTTP request as the routes see it: its limits, its signals (client gone, cut short), the
 * generation it runs through the server's admission, and how it answers — with the errors in each
 * API's shape. server.ts creates it; ollama.ts and openai.ts use it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';

import { ImageError } from '../image/errors.js';
import { PaliGemmaError } from '../errors.js';
import { TaskError } from '../tasks/errors.js';
import type { SegmentationDecoder } from '../tasks/segmentation.js';
import type { Admission } from './admission.js';
import { generationSize, runGeneration, type Generation, type GenerationOutcome, type ServedModel } from './generate.js';
import { HttpError, readJson, sendJson, type EventStream } from './http.js';
import type { ModelDescription } from './model-info.js';

/** Which API a route belongs to, for the shape of its errors. */
export type ApiKind = 'ollama' | 'openai';

/** A route handler; throws HttpError (or a library error) to answer with an error. */
export type Handler = (ctx: RequestContext) => Promise<void>;

/** One finished request, for the access log. */
export interface AccessLogEntry {
  method: string;
  path: string;
  status: number;
  ms: number;
  /** Tokens generated (generation routes). */
  tokens?: number;
  /** The client left before the response was complete. */
  disconnected: boolean;
  /** The error message sent, if any. */
  error?: string;
}

/** What every request of one server shares. */
export interface ServerState {
  model: ServedModel;
  description: ModelDescription;
  version: string;
  decoder: SegmentationDecoder | undefined;
  admission: Admission;
}

/** One request: its limits, its signals (client gone, cut short) and how it answers. */
export class RequestContext {
  readonly arrived = performance.now();
  /** Aborts when the client disconnects before the response is complete. */
  readonly gone: AbortSignal;
  /** Settles when the response is over (finished or connection closed). */
  readonly done: Promise<void>;
  /** The streamed response, once the route has chosen to stream. */
  stream: EventStream | undefined;
  #tokens: number | undefined;
  #error: string | undefined;
  readonly #cut = new AbortController();
  #admitted = false;
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly url: URL,
    readonly api: ApiKind,
    readonly state: ServerState,
    private readonly options: { maxBodyBytes: number; bodyTimeoutMs: number; requestTimeoutMs: number },
  ) {
    const gone = new AbortController();
    this.gone = gone.signal;
    this.done = new Promise((resolve) =>
      res.once('close', () => {
        clearTimeout(this.#timer);
        if (!res.writableFinished) gone.abort(new DOMException('the client disconnected', 'AbortError'));
        resolve();
      }),
    );
    const limit = options.requestTimeoutMs;
    if (limit > 0) {
      this.#timer = setTimeout(() => {
        const seconds = Math.round(limit / 1000);
        this.cutShort(
          this.#admitted
            ? new HttpError(408, `the request took longer than the server's limit of ${seconds} s`)
            : state.admission.busy(`the server is busy: the request waited ${seconds} s for a free slot`),
        );
      }, limit);
    }
  }

  /** Reads the JSON body within the server's size and time limits. */
  readJson(): Promise<Record<string, unknown>> {
    return readJson(this.req, { maxBytes: this.options.maxBodyBytes, timeoutMs: this.options.bodyTimeoutMs });
  }

  /** The served model's name if `name` refers to it; 400 when missing, 404 when another model. */
  modelName(name: unknown): string {
    const served = this.state.description.name;
    if (name === undefined || name === null || name === '') throw new HttpError(400, 'model is required');
    if (typeof name !== 'string') throw new HttpError(400, `model must be a string, got ${typeof name}`);
    if (withTag(name) !== withTag(served)) throw new HttpError(404, `model "${name}" not found; this server serves "${served}"`);
    return served;
  }

  /**
   * Runs a generation: checks the image's header (a bad or oversized image is refused without
   * queueing), waits for a slot and KV memory (the request timeout applies), then calls the model
   * with this request's signals; `onText` receives text as it can be sent.
   */
  async generate(g: Generation, onText?: (text: string) => void): Promise<GenerationOutcome> {
    const { admission, model, decoder } = this.state;
    await model.probeImage?.(g.image);
    const size = generationSize(model, g);
    const kvBytes = (size.promptTokens + size.maxTokens) * (model.kvBytesPerPosition ?? 0);
    const release = await admission.acquire(AbortSignal.any([this.gone, this.#cut.signal]), kvBytes);
    this.#admitted = true;
    try {
      const outcome = await runGeneration(model, g, { signal: this.gone, cut: this.#cut.signal, onText, decoder });
      this.#tokens = outcome.generatedTokens;
      return outcome;
    } finally {
      release();
    }
  }

  /** Cuts the generation short (timeout, shutdown); `reason` answers if nothing was sent yet. */
  cutShort(reason: HttpError): void {
    if (!this.#cut.signal.aborted) this.#cut.abort(reason);
  }

  /** Nanoseconds since the request arrived (Ollama's total_duration). */
  elapsedNs(): number {
    return Math.round((performance.now() - this.arrived) * 1e6);
  }

  /** Answers with an error in the API's shape: a status before anything was sent, else a last event. */
  fail(err: unknown): void {
    if (this.gone.aborted || this.res.destroyed) return;
    const e = toHttpError(err);
    this.#error = e.message;
    if (e.status >= 500 && !(err instanceof HttpError)) console.error(err);
    const body = errorBody(this.api, e);
    if (this.res.headersSent) {
      this.stream?.write(body);
      this.stream?.end();
      if (!this.stream) this.res.end();
      return;
    }
    sendJson(this.res, e.status, body, e.headers);
  }

  logEntry(): AccessLogEntry {
    return {
      method: this.req.method ?? '',
      path: this.url.pathname,
      status: this.res.statusCode,
      ms: performance.now() - this.arrived,
      tokens: this.#tokens,
      disconnected: this.gone.aborted,
      error: this.#error,
    };
  }
}

/** Ollama's default tag: `NAME` and `NAME:latest` are the same model. */
function withTag(name: string): string {
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.includes(':') ? name : `${name}:latest`;
}

/** Library errors as HTTP errors: bad input is the client's (400/413), the rest is ours (500). */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ImageError) return new HttpError(err.code === 'TOO_LARGE' ? 413 : 400, `image: ${err.message}`);
  if (err instanceof PaliGemmaError) return err.code === 'DISPOSED' ? new HttpError(503, err.message) : new HttpError(400, err.message);
  if (err instanceof TaskError) return new HttpError(400, err.message);
  return new HttpError(500, `internal error: ${err instanceof Error ? err.message : String(err)}`);
}

/** Ollama's `{ "error": "…" }`, or OpenAI's `{ "error": { message, type, param, code } }` on /v1 routes. */
export function errorBody(api: ApiKind, e: HttpError): unknown {
  if (api === 'ollama') return { error: e.message };
  const type = e.status === 401 ? 'authentication_error' : e.status < 500 ? 'invalid_request_error' : 'server_error';
  const code = e.status === 401 ? 'invalid_api_key' : e.status === 404 && e.message.startsWith('model ') ? 'model_not_found' : null;
  return { error: { message: e.message, type, param: null, code } };
}
