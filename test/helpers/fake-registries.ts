/**
 * An Ollama registry and a Hugging Face Hub on 127.0.0.1, speaking the parts of their protocols
 * `paligemma pull` uses, with a separate "CDN" origin that they redirect blob downloads to (as the
 * real ones do) and faults to inject: a connection cut after N bytes, a stalled connection, a
 * server that ignores Range, a corrupted blob. Every request is logged for assertions.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  path: string;
  range?: string;
  authorization?: string;
}

/** Faults for one blob (by sha256 hex), each used once unless said otherwise. */
export interface BlobFaults {
  /** Send this many bytes of the body, then close the connection (the client gets them all, then an early end). */
  cutAfter?: number;
  /** Send this many bytes, then keep the connection open and silent. */
  stallAfter?: number;
  /** Answer the next Range request with the whole file (200). */
  ignoreRange?: boolean;
  /** Always serve these bytes instead of the blob's own (same length, different content). */
  corrupt?: boolean;
}

export interface HfRepo {
  /** 40 hex digits. */
  commit: string;
  /** File name → content. */
  files: Map<string, Buffer>;
  /** Files stored in LFS: listed with their sha256, served through a redirect to the CDN. */
  lfs: Set<string>;
  /** Gated: resolve needs `Authorization: Bearer <token>` (401 without, 403 with another). */
  token?: string;
}

export const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

/** Serves `body` honouring a Range header; applies the blob's faults. */
function serveBytes(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, faults: BlobFaults | undefined): void {
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let start = 0;
  if (range && !faults?.ignoreRange) {
    start = Number(range[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
  } else {
    if (range && faults) faults.ignoreRange = false;
    res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
  }
  const rest = body.subarray(start);
  if (faults?.cutAfter !== undefined) {
    const n = faults.cutAfter;
    faults.cutAfter = undefined;
    // The close comes a moment after the bytes, so the client has most likely read them when the
    // stream breaks (fetch drops chunks still queued when a body stream errors; tests allow for that).
    res.write(rest.subarray(0, n), () => setTimeout(() => res.socket?.end(), 200));
    return;
  }
  if (faults?.stallAfter !== undefined) {
    const n = faults.stallAfter;
    faults.stallAfter = undefined;
    res.write(rest.subarray(0, n)); // and then nothing: the client must give up and resume
    return;
  }
  res.end(rest);
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

export class FakeRegistries {
  readonly log: LoggedRequest[] = [];
  /** Blobs by sha256 hex, served by the CDN. */
  readonly blobs = new Map<string, Buffer>();
  readonly faults = new Map<string, BlobFaults>();
  /** Ollama manifests by `namespace/model:tag`. */
  readonly manifests = new Map<string, string>();
  readonly repos = new Map<string, HfRepo>();
  #hub = http.createServer((req, res) => this.#hubRequest(req, res));
  #cdn = http.createServer((req, res) => this.#cdnRequest(req, res));
  hubUrl = '';
  cdnUrl = '';

  async start(): Promise<void> {
    for (const server of [this.#hub, this.#cdn]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.hubUrl = `http://127.0.0.1:${(this.#hub.address() as AddressInfo).port}`;
    this.cdnUrl = `http://127.0.0.1:${(this.#cdn.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const server of [this.#hub, this.#cdn]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  /** Adds a blob and returns its descriptor for a manifest. */
  blob(content: Buffer | string, mediaType: string): { mediaType: string; digest: string; size: number } {
    const bytes = Buffer.from(content);
    const hex = sha256(bytes);
    this.blobs.set(hex, bytes);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
  }

  /** Publishes an Ollama model; returns the manifest text. */
  ollamaModel(name: string, layers: { mediaType: string; digest: string; size: number }[]): string {
    const config = this.blob(JSON.stringify({ model_format: 'gguf', model_family: 'gemma' }), 'application/vnd.docker.container.image.v1+json');
    const text = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config, layers });
    this.manifests.set(name, text);
    return text;
  }

  /** Publishes a Hugging Face repository; LFS files also become CDN blobs. */
  hfRepo(name: string, repo: HfRepo): void {
    for (const file of repo.lfs) this.blobs.set(sha256(repo.files.get(file)!), repo.files.get(file)!);
    this.repos.set(name, repo);
  }

  /** The CDN requests for a blob. */
  cdnRequests(hex: string): LoggedRequest[] {
    return this.log.filter((r) => r.server === 'cdn' && r.path === `/blobs/${hex}`);
  }

  #record(server: 'hub' | 'cdn', req: http.IncomingMessage): URL {
    const url = new URL(req.url ?? '/', 'http://x');
    this.log.push({ server, path: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    return url;
  }

  #cdnRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = this.#record('cdn', req);
    // Like a presigned CDN URL: credentials meant for the registry must never arrive here.
    if (req.headers.authorization) return json(res, 400, { error: 'unexpected Authorization header' });
    const hex = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const body = hex && this.blobs.get(hex);
    if (!body) return json(res, 404, { error: 'no such blob' });
    const faults = this.faults.get(hex);
    serveBytes(req, res, faults?.corrupt ? Buffer.from(body.map((b) => b ^ 0x5a)) : body, faults);
  }

  #hubRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = this.#record('hub', req);
    const p = url.pathname;
    let m: RegExpExecArray | null;
    if ((m = /^\/v2\/([^/]+)\/([^/]+)\/manifests\/([^/]+)$/.exec(p))) {
      const text = this.manifests.get(`${m[1]}/${m[2]}:${m[3]}`);
      if (!text) return json(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
      res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' }).end(text);
      return;
    }
    if ((m = /^\/v2\/([^/]+)\/([^/]+)\/blobs\/sha256:([0-9a-f]{64})$/.exec(p))) {
      if (!this.blobs.has(m[3]!)) return json(res, 404, { errors: [{ code: 'BLOB_UNKNOWN' }] });
      res.writeHead(307, { location: `${this.cdnUrl}/blobs/${m[3]}` }).end();
      return;
    }
    if ((m = /^\/api\/models\/([^/]+)\/([^/]+)\/revision\/([^/]+)$/.exec(p))) {
      const repo = this.repos.get(`${m[1]}/${m[2]}`);
      if (!repo) return json(res, 401, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
      const rev = decodeURIComponent(m[3]!);
      if (rev !== 'main' && rev !== repo.commit) return json(res, 404, { error: 'Invalid rev id' }, { 'x-error-code': 'RevisionNotFound' });
      const siblings = [...repo.files].map(([rfilename, bytes]) => ({
        rfilename,
        size: bytes.length,
        ...(repo.lfs.has(rfilename) ? { lfs: { sha256: sha256(bytes), size: bytes.length, pointerSize: 134 } } : {}),
      }));
      return json(res, 200, { id: `${m[1]}/${m[2]}`, sha: repo.commit, gated: repo.token ? 'manual' : false, siblings });
    }
    if ((m = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p))) {
      const repo = this.repos.get(`${m[1]}/${m[2]}`);
      if (!repo) return json(res, 401, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
      if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
        return req.headers.authorization
          ? json(res, 403, { error: 'Access to model is restricted' }, { 'x-error-code': 'GatedRepo', 'x-error-message': 'Access to this model is restricted; accept the conditions first.' })
          : json(res, 401, { error: 'Access to model is restricted' }, { 'x-error-code': 'GatedRepo', 'x-error-message': 'Access to this model is restricted. You must have access to it and be authenticated to access it.' });
      }
      const file = decodeURIComponent(m[4]!);
      const body = m[3] === repo.commit ? repo.files.get(file) : undefined;
      if (!body) return json(res, 404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound' });
      if (repo.lfs.has(file)) {
        res.writeHead(302, { location: `${this.cdnUrl}/blobs/${sha256(body)}`, 'x-repo-commit': repo.commit, 'x-linked-size': String(body.length), 'x-linked-etag': `"${sha256(body)}"` }).end();
        return;
      }
      serveBytes(req, res, body, undefined);
      return;
    }
    json(res, 404, { error: `no route for ${p}` });
  }
}
