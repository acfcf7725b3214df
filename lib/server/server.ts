/**
 * `createServer(model, options)`: Ollama's and OpenAI's HTTP APIs over one loaded model, on
 * node:http. This file owns the request lifecycle — routing, the bearer token, body limits,
 * admission, the request timeout, client disconnects and graceful shutdown; the routes
 * (ollama.ts, openai.ts) turn requests into generations and results into each API's JSON.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
// Named imports only: a default import would appear in server.d.ts, which CommonJS consumers without
// esModuleInterop cannot read.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { ModelFiles } from '../model/files.js';
import type { SegmentationDecoder } from '../tasks/segmentation.js';
import { Admission } from './admission.js';
import type { ServedModel } from './generate.js';
import { HttpError } from './http.js';
import { describeModel } from './model-info.js';
import { RequestContext, type AccessLogEntry, type ApiKind, type Handler, type ServerState } from './context.js';
import { ollamaRoutes } from './ollama.js';
import { openaiRoutes } from './openai.js';

/** Options of {@link createServer}. */
export interface ServerOptions {
  /** The name clients give as `model` (default `paligemma`). `NAME` and `NAME:latest` are the same model. */
  name?: string;
  /** The model's files, for sizes and details in the model listings (default: the model's own). */
  files?: ModelFiles;
  /** The mask decoder, so that `segment …` prompts return masks as well as boxes (default: the model's own). */
  segmentation?: SegmentationDecoder;
  /**
   * Generations issued to the model at once (default: the model's `maxSequences`, else 4); they
   * share its decode steps. More wait in the queue.
   */
  parallel?: number;
  /** Requests that may wait for a slot (default 64); more get 503 with Retry-After. */
  maxQueue?: number;
  /**
   * KV cache the running and waiting requests may fill, in bytes: each request counts its prompt
   * and its token limit (default a quarter of the machine's RAM). A request that would exceed it
   * gets 503 with Retry-After (400 if it exceeds it alone). Needs the model's `kvBytesPerPosition`.
   */
  maxKvBytes?: number;
  /** Largest request body in bytes (default 32 MiB); larger gets 413. */
  maxBodyBytes?: number;
  /** Time for the request body to arrive (default 60 s); slower gets 408. */
  bodyTimeoutMs?: number;
  /**
   * Longest time from a request's arrival to its end (default 10 minutes; 0 = no limit). Waiting
   * for a slot past it gets 503; a generation past it is cut short (`done_reason` `length`) if it
   * has produced text, and gets 408 if not.
   */
  requestTimeoutMs?: number;
  /** Require `Authorization: Bearer <apiKey>` on every route except `GET /`. */
  apiKey?: string;
  /** Called once per request when its response is over (access log). */
  log?: (entry: AccessLogEntry) => void;
}

/** A server made by {@link createServer}. */
export interface PaliGemmaServer {
  /** Starts listening (default 127.0.0.1:11434; port 0 picks a free port) and resolves with the address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /**
   * Graceful shutdown: stops accepting requests, refuses queued ones (503), lets running
   * generations finish for up to `graceMs` (default 10 s), then cuts them short with a final
   * chunk, and resolves when every connection is closed. The model is not disposed.
   */
  close(options?: { graceMs?: number }): Promise<void>;
  /** Generations running, requests waiting for a slot, and the KV cache they may fill. */
  readonly load: { running: number; waiting: number; parallel: number; maxQueue: number; kvBytes: number; maxKvBytes: number };
  /** The node:http server underneath. */
  readonly http: HttpServer;
}



const DEFAULTS = {
  name: 'paligemma',
  parallel: 4,
  maxQueue: 64,
  maxKvBytes: Math.floor(os.totalmem() / 4),
  maxBodyBytes: 32 * 1024 * 1024,
  bodyTimeoutMs: 60_000,
  requestTimeoutMs: 600_000,
};
const DEFAULT_PORT = 11434;
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_GRACE_MS = 10_000;

/** Creates the server; call `listen()` to start it. */
export function createServer(model: ServedModel, options: ServerOptions = {}): PaliGemmaServer {
  return new Server(model, options);
}

class Server implements PaliGemmaServer {
  readonly http: HttpServer;
  readonly #state: ServerState;
  readonly #options: Required<Omit<ServerOptions, 'files' | 'segmentation' | 'apiKey' | 'log'>> & Pick<ServerOptions, 'apiKey' | 'log'>;
  readonly #routes: Map<string, Map<string, Handler>>;
  readonly #active = new Set<RequestContext>();
  #closing: Promise<void> | undefined;
  #shutdown: HttpError | undefined;

  constructor(model: ServedModel, options: ServerOptions) {
    const o = { ...DEFAULTS, parallel: model.sequences?.maxSequences ?? DEFAULTS.parallel, ...stripUndefined(options) };
    checkPositiveInteger('parallel', o.parallel, 1);
    checkPositiveInteger('maxQueue', o.maxQueue, 0);
    checkPositiveInteger('maxKvBytes', o.maxKvBytes, 1);
    checkPositiveInteger('maxBodyBytes', o.maxBodyBytes, 1);
    checkPositiveInteger('bodyTimeoutMs', o.bodyTimeoutMs, 1);
    checkPositiveInteger('requestTimeoutMs', o.requestTimeoutMs, 0);
    if (typeof o.name !== 'string' || o.name.trim() === '') throw new TypeError('createServer: name must be a non-empty string');
    if (o.apiKey !== undefined && (typeof o.apiKey !== 'string' || o.apiKey === '')) throw new TypeError('createServer: apiKey must be a non-empty string');
    this.#options = o;
    this.#state = {
      model,
      description: describeModel(o.name, options.files ?? model.files),
      version: packageVersion(),
      decoder: options.segmentation ?? model.segmentation,
      admission: new Admission(o.parallel, o.maxQueue, o.maxKvBytes),
    };
    this.#routes = new Map();
    for (const [key, handler] of Object.entries({ ...ollamaRoutes, ...openaiRoutes })) {
      const [method, route] = key.split(' ') as [string, string];
      if (!this.#routes.has(route)) this.#routes.set(route, new Map());
      this.#routes.get(route)!.set(method, handler);
    }
    this.http = createHttpServer({ noDelay: true, requestTimeout: o.bodyTimeoutMs + 10_000 }, (req, res) => void this.#handle(req, res));
  }

  get load() {
    const a = this.#state.admission;
    return { running: a.running, waiting: a.waiting, parallel: a.parallel, maxQueue: a.maxQueue, kvBytes: a.kvBytes, maxKvBytes: a.maxKvBytes };
  }

  listen(port = DEFAULT_PORT, host = DEFAULT_HOST): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is already in use`, { cause: err }) : err);
      };
      this.http.once('error', onError);
      this.http.listen(port, host, () => {
        this.http.off('error', onError);
        resolve(this.http.address() as AddressInfo);
      });
    });
  }

  close(options: { graceMs?: number } = {}): Promise<void> {
    const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    if (this.#closing) {
      if (graceMs === 0) this.#cutAll();
      return this.#closing;
    }
    this.#shutdown = new HttpError(503, 'the server is shutting down', { Connection: 'close' });
    this.#state.admission.close(this.#shutdown);
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    this.#closing = (async () => {
      const timer = setTimeout(() => this.#cutAll(), graceMs);
      await this.#drained();
      clearTimeout(timer);
      this.http.closeAllConnections();
      await closed;
    })();
    return this.#closing;
  }

  /** Resolves when no request is in progress. */
  async #drained(): Promise<void> {
    while (this.#active.size > 0) await Promise.all([...this.#active].map((ctx) => ctx.done));
  }

  #cutAll(): void {
    for (const ctx of this.#active) ctx.cutShort(this.#shutdown!);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const api: ApiKind = url.pathname.startsWith('/v1/') ? 'openai' : 'ollama';
    const ctx = new RequestContext(req, res, url, api, this.#state, this.#options);
    this.#active.add(ctx);
    void ctx.done.then(() => {
      this.#active.delete(ctx);
      this.#options.log?.(ctx.logEntry());
    });
    try {
      if (this.#shutdown) throw this.#shutdown;
      if (url.pathname === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end(req.method === 'GET' ? 'paligemma is running' : undefined);
        return;
      }
      const methods = this.#routes.get(url.pathname) ?? this.#prefixRoute(url.pathname);
      if (!methods) throw new HttpError(404, `no such route: ${req.method} ${url.pathname}`);
      const handler = methods.get(req.method ?? '');
      if (!handler) throw new HttpError(405, `${url.pathname} takes ${[...methods.keys()].join(', ')}, not ${req.method}`, { Allow: [...methods.keys()].join(', ') });
      this.#authorize(req);
      await handler(ctx);
    } catch (err) {
      ctx.fail(err);
    }
  }

  /** Routes ending in `/*` take any rest of the path (`/v1/models/NAME`, names may contain `/`). */
  #prefixRoute(pathname: string): Map<string, Handler> | undefined {
    for (const [route, methods] of this.#routes) {
      if (route.endsWith('/*') && pathname.startsWith(route.slice(0, -1)) && pathname.length > route.length - 1) return methods;
    }
    return undefined;
  }

  #authorize(req: IncomingMessage): void {
    const key = this.#options.apiKey;
    if (key === undefined) return;
    const header = req.headers.authorization ?? '';
    const given = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
    const digest = (s: string) => createHash('sha256').update(s).digest();
    if (given === undefined || !timingSafeEqual(digest(given), digest(key))) {
      throw new HttpError(401, given === undefined ? 'this server needs an API key: send Authorization: Bearer <key>' : 'the API key is wrong', {
        'WWW-Authenticate': 'Bearer',
      });
    }
  }
}





function packageVersion(): string {
  const pkgPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../package.json');
  return (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
}

function checkPositiveInteger(name: string, value: unknown, min: number): void {
  if (!(Number.isSafeInteger(value) && (value as number) >= min))
    throw new TypeError(`createServer: ${name} must be an integer ≥ ${min}, got ${String(value)}`);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
