/**
 * The HTTP plumbing the routes share: a typed error that carries its status, reading a JSON body
 * within size and time limits, and writing JSON, NDJSON and server-sent events. node:http only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A request that cannot be served, with the HTTP status that says why. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    /** Extra response headers, e.g. `Retry-After` for 503. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** How long and how large a request body may be. */
export interface BodyLimits {
  maxBytes: number;
  timeoutMs: number;
}

/**
 * Reads the whole body and parses it as a JSON object. Fails with 413 when it is larger than
 * `maxBytes` (from Content-Length before reading, or while reading), 408 when it does not arrive
 * within `timeoutMs`, 400 when it is not a JSON object.
 */
export async function readJson(req: IncomingMessage, limits: BodyLimits): Promise<Record<string, unknown>> {
  // The rest of the body is not read, so the connection cannot carry another request.
  const close = { Connection: 'close' };
  const tooLarge = () => new HttpError(413, `the request body is larger than the server's limit of ${limits.maxBytes} bytes`, close);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limits.maxBytes) throw tooLarge();
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(
      () => fail(new HttpError(408, `the request body did not arrive within ${limits.timeoutMs / 1000} s`, close)),
      limits.timeoutMs,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.resume(); // discard the rest; the response says why
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) fail(tooLarge());
      else chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    req.once('error', (err) => fail(err));
  });
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'the request body must be a JSON object');
  return value as Record<string, unknown>;
}

/** Sends one JSON document (and ends the response). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * A streamed response whose headers go out with the first event, so that anything failing before
 * it (a bad image, a full queue) can still get a proper status code.
 */
export abstract class EventStream {
  constructor(readonly res: ServerResponse) {}

  /** Whether the status line and headers are out (the status can no longer change). */
  get started(): boolean {
    return this.res.headersSent;
  }

  /** Writes one event; false once the client is gone. */
  write(event: unknown): boolean {
    if (this.res.destroyed || this.res.writableEnded) return false;
    if (!this.started) this.res.writeHead(200, this.headers());
    this.res.write(this.frame(event));
    return true;
  }

  /** Ends the response after the last event. */
  end(): void {
    if (this.res.destroyed || this.res.writableEnded) return;
    if (!this.started) this.res.writeHead(200, this.headers());
    this.res.end(this.trailer());
  }

  protected abstract headers(): Record<string, string>;
  protected abstract frame(event: unknown): string;
  protected trailer(): string {
    return '';
  }
}

/** Newline-delimited JSON, as Ollama streams: one JSON object per line. */
export class NdjsonStream extends EventStream {
  protected headers() {
    return { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-cache' };
  }
  protected frame(event: unknown) {
    return `${JSON.stringify(event)}\n`;
  }
}

/** Server-sent events, as OpenAI streams: `data: {json}` events, then `data: [DONE]`. */
export class SseStream extends EventStream {
  protected headers() {
    return { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' };
  }
  protected frame(event: unknown) {
    return `data: ${JSON.stringify(event)}\n\n`;
  }
  protected override trailer() {
    return 'data: [DONE]\n\n';
  }
}
