/**
 * Admission control: at most `parallel` generations in flight on the model, at most `maxQueue`
 * more waiting for a slot; beyond that a request is refused at once with 503 and a Retry-After
 * estimated from recent service times. The server does not serialise generations itself: the
 * admitted ones are issued to the model concurrently, which runs them as it can (today one after
 * another; batched, once the model schedules concurrent calls into shared decode steps).
 */
import { HttpError } from './http.js';

/** Releases an admitted slot; call exactly once. */
export type Release = () => void;

interface Waiter {
  admit: (release: Release) => void;
  reject: (err: unknown) => void;
}

/** Weight of the newest service time in the moving average. */
const EWMA_WEIGHT = 0.2;

export class Admission {
  #running = 0;
  readonly #waiting: Waiter[] = [];
  /** Moving average of how long a slot is held, in ms (undefined before the first release). */
  #serviceMs: number | undefined;
  #closed: HttpError | undefined;

  constructor(
    readonly parallel: number,
    readonly maxQueue: number,
  ) {}

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
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
   * Waits for a slot. Rejects at once with 503 when the queue is full or admission is closed,
   * and with the signal's reason when it aborts while waiting.
   */
  acquire(signal: AbortSignal): Promise<Release> {
    if (this.#closed) return Promise.reject(this.#closed);
    signal.throwIfAborted();
    if (this.#running < this.parallel) return Promise.resolve(this.#slot());
    if (this.#waiting.length >= this.maxQueue)
      return Promise.reject(this.busy(`the server is busy: ${this.#running} requests running and ${this.#waiting.length} waiting (the queue limit)`));
    return new Promise<Release>((resolve, reject) => {
      const onAbort = () => {
        this.#remove(waiter);
        reject(signal.reason);
      };
      const waiter: Waiter = {
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
    for (const w of this.#waiting.splice(0)) w.reject(error);
  }

  #slot(): Release {
    this.#running++;
    const start = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const ms = performance.now() - start;
      this.#serviceMs = this.#serviceMs === undefined ? ms : this.#serviceMs + EWMA_WEIGHT * (ms - this.#serviceMs);
      this.#running--;
      const next = this.#waiting.shift();
      if (next) next.admit(this.#slot());
    };
  }

  #remove(waiter: Waiter): void {
    const i = this.#waiting.indexOf(waiter);
    if (i >= 0) this.#waiting.splice(i, 1);
  }
}
