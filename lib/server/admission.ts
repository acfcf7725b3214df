/**
 * Admission control: at most `parallel` generations in flight on the model, at most `maxQueue`
 * more waiting for a slot, and the KV cache that the running and waiting ones may fill within
 * `maxKvBytes`; beyond that a request is refused at once with 503 and a Retry-After estimated from
 * recent service times. The admitted generations are issued to the model concurrently, whose step
 * scheduler batches them into shared decode steps.
 */
import { HttpError } from './http.js';

/** Releases an admitted slot; call exactly once. */
export type Release = () => void;

interface Waiter {
  kvBytes: number;
  admit: (release: Release) => void;
  reject: (err: unknown) => void;
}

/** Weight of the newest service time in the moving average. */
const EWMA_WEIGHT = 0.2;

export class Admission {
  #running = 0;
  readonly #waiting: Waiter[] = [];
  /** KV bytes the running and the waiting requests may fill. */
  #kvRunning = 0;
  #kvWaiting = 0;
  /** Moving average of how long a slot is held, in ms (undefined before the first release). */
  #serviceMs: number | undefined;
  #closed: HttpError | undefined;

  constructor(
    readonly parallel: number,
    readonly maxQueue: number,
    readonly maxKvBytes = Infinity,
  ) {}

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** KV bytes the running and waiting requests may fill (their prompts and token limits). */
  get kvBytes(): number {
    return this.#kvRunning + this.#kvWaiting;
  }

  /**
   * Seconds until a slot is likely free for a newcomer: the queue ahead of it, spread over the
   * slots, times the average service time. At least 1.
   */
  retryAfterSeconds(): number {
    const serviceMs = this.#serviceMs ?? 1000;
    return Math.max(1, Math.ceil(((this.#waiting.length + 1) / this.parallel) * serviceMs / 1000));
  }

  /** A 503 that tells the client when to come back. */
  busy(message: string): HttpError {
    return new HttpError(503, message, { 'Retry-After': String(this.retryAfterSeconds()) });
  }

  /**
   * Waits for a slot for a request whose KV cache may fill `kvBytes`. Rejects at once with 503 when
   * the queue is full, when the running and waiting requests' KV cache would exceed the limit with
   * this one, or when admission is closed; with 400 when this one alone exceeds it; and with the
   * signal's reason when it aborts while waiting.
   */
  acquire(signal: AbortSignal, kvBytes = 0): Promise<Release> {
    if (this.#closed) return Promise.reject(this.#closed);
    signal.throwIfAborted();
    if (kvBytes > this.maxKvBytes)
      return Promise.reject(
        new HttpError(400, `this request may fill ${mb(kvBytes)} of KV cache (its prompt and token limit), more than the server's limit of ${mb(this.maxKvBytes)}; ask for fewer tokens`),
      );
    if (this.kvBytes + kvBytes > this.maxKvBytes)
      return Promise.reject(
        this.busy(`the server is busy: the ${this.#running + this.#waiting.length} requests running and waiting may fill ${mb(this.kvBytes)} of KV cache, and this one ${mb(kvBytes)} more than the limit of ${mb(this.maxKvBytes)} allows`),
      );
    if (this.#running < this.parallel) return Promise.resolve(this.#slot(kvBytes));
    if (this.#waiting.length >= this.maxQueue)
      return Promise.reject(this.busy(`the server is busy: ${this.#running} requests running and ${this.#waiting.length} waiting (the queue limit)`));
    this.#kvWaiting += kvBytes;
    return new Promise<Release>((resolve, reject) => {
      const onAbort = () => {
        this.#remove(waiter);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        kvBytes,
        admit: (release) => {
          signal.removeEventListener('abort', onAbort);
          resolve(release);
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** Refuses every waiting and future request with `error` (shutdown). Running ones keep their slots. */
  close(error: HttpError): void {
    this.#closed = error;
    this.#kvWaiting = 0;
    for (const w of this.#waiting.splice(0)) w.reject(error);
  }

  #slot(kvBytes: number): Release {
    this.#running++;
    this.#kvRunning += kvBytes;
    const start = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const ms = performance.now() - start;
      this.#serviceMs = this.#serviceMs === undefined ? ms : this.#serviceMs + EWMA_WEIGHT * (ms - this.#serviceMs);
      this.#running--;
      this.#kvRunning -= kvBytes;
      const next = this.#waiting.shift();
      if (next) {
        this.#kvWaiting -= next.kvBytes;
        next.admit(this.#slot(next.kvBytes));
      }
    };
  }

  #remove(waiter: Waiter): void {
    const i = this.#waiting.indexOf(waiter);
    if (i < 0) return;
    this.#waiting.splice(i, 1);
    this.#kvWaiting -= waiter.kvBytes;
  }
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MB`;
