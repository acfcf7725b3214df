/**
 * The HTTP side of pulling, on Node's fetch: redirects followed by hand (credentials go to the
 * origin they are meant for, never to the CDN a registry redirects to), bounded reads of small
 * documents, and resumable, verified file downloads — a `.partial` file grows by Range requests
 * across failures and runs, and only a file with the right size and sha256 is renamed into place.
 */
import { open, rename, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { sha256File } from '../ollama/store.js';
import { PullError } from './errors.js';

/** How transfers are retried. Defaults suit real networks; tests shorten the waits. */
export interface TransferOptions {
  /** Aborts the pull: it rejects with the signal's reason; partial files stay for the next run. */
  signal?: AbortSignal;
  /** Attempts after failures in a row that brought no new bytes (default 5). */
  retries?: number;
  /** Wait before the first retry, doubled for each further one up to 30 s (default 1000 ms). */
  retryDelayMs?: number;
  /** A connection that delivers nothing for this long is dropped and resumed (default 60 s). */
  stallTimeoutMs?: number;
}

/** An `Authorization` header and the one origin it may be sent to. */
export interface Credentials {
  origin: string;
  authorization: string;
}

/** Turns a refusal (a 4xx the caller knows how to explain) into its error. */
export type HttpErrorMessage = (status: number, headers: Headers, url: string) => PullError;

const USER_AGENT = 'paligemma (Node.js)';
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const MAX_RETRY_DELAY_MS = 30_000;

/** A failure worth another try: the network, a stall, or a server-side HTTP status. */
function isRetryable(err: unknown): boolean {
  if (!(err instanceof PullError)) return false;
  if (err.code === 'NETWORK') return true;
  return err.code === 'HTTP' && err.status !== undefined && (err.status >= 500 || err.status === 408 || err.status === 429);
}

/** Errors from the file system are the disk's fault and final; anything else broke in the transfer. */
function classify(err: unknown, url: string): PullError {
  if (err instanceof PullError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.syscall !== undefined && (e.code === 'ENOSPC' || e.code === 'EDQUOT')) return new PullError('NO_SPACE', `the disk is full: ${e.message}`, { cause: err });
  if (e.syscall !== undefined && e.path !== undefined) return new PullError('IO', `cannot write ${e.path}: ${e.message}`, { cause: err });
  const reason = (e.cause as Error | undefined)?.message ?? e.message;
  return new PullError('NETWORK', `the connection to ${new URL(url).origin} failed: ${reason}`, { cause: err, url });
}

/** Any status outside 2xx that the caller's explanation does not cover. */
export function httpStatusError(status: number, url: string): PullError {
  return new PullError('HTTP', `${new URL(url).origin} answered HTTP ${status} for ${url}`, { status, url });
}

/** The error for a response outside 2xx: the caller's explanation of a refusal (4xx), else a retryable HTTP error. */
async function statusError(response: Response, url: string, refusal: HttpErrorMessage): Promise<PullError> {
  await response.body?.cancel();
  const { status } = response;
  return status >= 400 && status < 500 && status !== 408 && status !== 429 ? refusal(status, response.headers, url) : httpStatusError(status, url);
}

/**
 * One GET, following redirects by hand: `credentials` only go to their own origin, and every hop
 * keeps the other headers (Range survives the redirect to a CDN). Returns the final response,
 * whatever its status, and its URL.
 */
export async function request(
  url: string,
  options: { headers?: Record<string, string>; credentials?: Credentials; signal?: AbortSignal } = {},
): Promise<{ response: Response; url: string }> {
  let current = new URL(url);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...options.headers };
    if (options.credentials && current.origin === options.credentials.origin) headers.authorization = options.credentials.authorization;
    let response: Response;
    try {
      response = await fetch(current, { headers, redirect: 'manual', signal: options.signal });
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw classify(err, current.href);
    }
    if (!REDIRECTS.has(response.status)) return { response, url: current.href };
    await response.body?.cancel();
    const location = response.headers.get('location');
    if (!location) throw new PullError('BAD_RESPONSE', `${current.origin} redirected (HTTP ${response.status}) without saying where to`, { url: current.href });
    const next = new URL(location, current);
    if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new PullError('BAD_RESPONSE', `${current.origin} redirected to a ${next.protocol} URL`, { url: current.href });
    current = next;
  }
  throw new PullError('BAD_RESPONSE', `more than ${MAX_REDIRECTS} redirects from ${url}`, { url });
}

/** Runs `attempt` until it succeeds, retrying retryable failures with exponential backoff. */
async function withRetries<T>(o: TransferOptions, attempt: () => Promise<T>, madeProgress: () => boolean = () => false): Promise<T> {
  const retries = o.retries ?? 5;
  let failures = 0;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason;
      if (madeProgress()) failures = 0;
      if (!isRetryable(err) || failures >= retries) throw err;
      const delay = Math.min((o.retryDelayMs ?? 1000) * 2 ** failures, MAX_RETRY_DELAY_MS);
      failures++;
      await sleep(delay, undefined, { signal: o.signal });
    }
  }
}

/** Reads a small document (a manifest, a file listing), refusing more than `maxBytes`. */
export async function fetchText(
  url: string,
  o: TransferOptions & { accept?: string; credentials?: Credentials; maxBytes: number; refusal: HttpErrorMessage },
): Promise<string> {
  return withRetries(o, async () => {
    const { response, url: final } = await request(url, { headers: o.accept ? { accept: o.accept } : {}, credentials: o.credentials, signal: o.signal });
    if (!response.ok) throw await statusError(response, final, o.refusal);
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        if (bytes > o.maxBytes) throw new PullError('BAD_RESPONSE', `${final} sent more than ${o.maxBytes} bytes; that is not a manifest or a file listing`, { url: final });
        chunks.push(chunk);
      }
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason;
      throw classify(err, final);
    }
    return Buffer.concat(chunks).toString('utf8');
  });
}

/** What a downloaded file must be. */
export interface Expected {
  /** Exact size in bytes, when known beforehand. */
  size?: number;
  /** sha256 in hex, when known; the file is hashed after the download and refused if it differs. */
  sha256?: string;
}

/** Options of {@link downloadFile}. */
export interface DownloadOptions extends TransferOptions {
  credentials?: Credentials;
  refusal: HttpErrorMessage;
  /** Bytes added to (or, when a server ignores a Range and the file restarts, removed from) the file; and bytes hashed. */
  onBytes?: (delta: number, phase: 'download' | 'verify') => void;
  /** For messages: what the file is, e.g. `the model layer` or `model.safetensors`. */
  what: string;
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

async function sizeOf(file: string): Promise<number> {
  return (await stat(file).catch(() => undefined))?.size ?? 0;
}

/** The file where a download grows until it is verified. */
export function partialPath(file: string): string {
  return `${file}.partial`;
}

/**
 * Downloads `url` to `file` (unless it is there already with the expected size): resumes `<file>.partial` with a Range request when one is there (from
 * an earlier failure or run), retries broken or stalled connections from where they stopped, then
 * checks the size and sha256 and renames the file into place. A file that fails the check is
 * deleted; if it had been resumed from an earlier run, it is fetched once more from the start.
 */
export async function downloadFile(url: string, file: string, expected: Expected, o: DownloadOptions): Promise<void> {
  // Only verified files are ever renamed into place, so one of the right size is the file.
  if (expected.size !== undefined && (await stat(file).catch(() => undefined))?.size === expected.size) {
    o.onBytes?.(expected.size, 'download');
    return;
  }
  const partial = partialPath(file);
  const resumed = (await sizeOf(partial)) > 0;
  await fetchToPartial(url, partial, expected, o);
  const problem = await verify(partial, expected, o);
  if (problem === undefined) return rename(partial, file);
  await rm(partial, { force: true });
  if (resumed) return downloadFile(url, file, expected, o); // the old part may have been the bad one
  throw new PullError('CORRUPT', `${o.what} from ${new URL(url).origin} ${problem}; it was deleted. Run the pull again; if this repeats, the registry serves a damaged file`, { url });
}

/** Why the file is not what was expected, or undefined when it is. */
async function verify(partial: string, expected: Expected, o: DownloadOptions): Promise<string | undefined> {
  const size = await sizeOf(partial);
  if (expected.size !== undefined && size !== expected.size) return `has ${size} bytes instead of ${expected.size}`;
  if (expected.sha256 === undefined) return undefined;
  const actual = await sha256File(partial, (bytes) => o.onBytes?.(bytes, 'verify'));
  return actual === expected.sha256 ? undefined : `does not match its sha256 digest (expected ${expected.sha256}, got ${actual})`;
}

/** Grows `partial` until the server has sent everything (or `expected.size` bytes), resuming across failures. */
async function fetchToPartial(url: string, partial: string, expected: Expected, o: DownloadOptions): Promise<void> {
  let reported = 0; // bytes of `partial` already reported through onBytes
  const report = (size: number) => {
    o.onBytes?.(size - reported, 'download');
    reported = size;
  };
  let before = 0;
  await withRetries(
    o,
    async () => {
      let have = await sizeOf(partial);
      if (expected.size !== undefined && have > expected.size) {
        await rm(partial, { force: true });
        have = 0;
      }
      before = have;
      report(have);
      if (expected.size !== undefined && have === expected.size) return;
      await fetchRange(url, partial, have, expected, o, report);
    },
    () => reported > before,
  );
}

/** One attempt: GET from byte `have` on, appending to `partial` (or rewriting it if the server ignores the Range). */
async function fetchRange(url: string, partial: string, have: number, expected: Expected, o: DownloadOptions, report: (size: number) => void): Promise<void> {
  const stallMs = o.stallTimeoutMs ?? 60_000;
  const stall = new AbortController();
  const timer = setTimeout(() => stall.abort(), stallMs);
  const signal = o.signal ? AbortSignal.any([o.signal, stall.signal]) : stall.signal;
  let final = url;
  try {
    const { response, url: responseUrl } = await request(url, { headers: have > 0 ? { range: `bytes=${have}-` } : {}, credentials: o.credentials, signal });
    final = responseUrl;
    let start = 0;
    if (response.status === 206) {
      const range = CONTENT_RANGE.exec(response.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== have) {
        await response.body?.cancel();
        await rm(partial, { force: true });
        throw new PullError('NETWORK', `${new URL(final).origin} answered a Range request with another range (${response.headers.get('content-range')}); starting over`, { url: final });
      }
      start = have;
    } else if (response.status === 416 && have > 0) {
      // Nothing after byte `have`: the partial file already has it all, or more than the server has.
      await response.body?.cancel();
      const total = /\/(\d+)$/.exec(response.headers.get('content-range') ?? '')?.[1];
      if (total !== undefined && Number(total) === have && expected.size === undefined) return;
      await rm(partial, { force: true });
      throw new PullError('NETWORK', `${new URL(final).origin} has fewer bytes than the partial download; starting over`, { url: final });
    } else if (!response.ok) {
      throw await statusError(response, final, o.refusal);
    }
    if (!response.body) throw new PullError('NETWORK', `${new URL(final).origin} sent no body for ${o.what}`, { url: final });
    const length = Number(response.headers.get('content-length') ?? NaN);
    const end = expected.size ?? (Number.isSafeInteger(length) ? start + length : undefined);
    report(start);
    // Each chunk is on disk before the next is read, so after any failure the partial file holds
    // exactly the bytes received, and the next attempt asks for the rest.
    let size = start;
    const out = await open(partial, start > 0 ? 'a' : 'w');
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        timer.refresh();
        if (end !== undefined && size + chunk.length > end) throw new PullError('CORRUPT', `${new URL(final).origin} sent more than the ${end} bytes of ${o.what}`, { url: final });
        for (let at = 0; at < chunk.length; ) at += (await out.write(chunk, at, chunk.length - at)).bytesWritten;
        size += chunk.length;
        report(size);
      }
    } finally {
      await out.close();
    }
    if (end !== undefined && size < end) throw new PullError('NETWORK', `the connection closed after ${size} of ${end} bytes of ${o.what}`, { url: final });
  } catch (err) {
    if (o.signal?.aborted) throw o.signal.reason;
    if (stall.signal.aborted) throw new PullError('NETWORK', `no data from ${new URL(final).origin} for ${stallMs / 1000} s`, { url: final, cause: err });
    throw classify(err, final);
  } finally {
    clearTimeout(timer);
  }
}
