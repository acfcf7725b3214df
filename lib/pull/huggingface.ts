/**
 * Pulling a PaliGemma checkpoint from the Hugging Face Hub and converting it to the two GGUF files.
 * The file list comes from `/api/models/<repo>/revision/<rev>?blobs=true` (sizes, and the sha256 of
 * every LFS file), pinned to the commit it names; files come from `/<repo>/resolve/<commit>/<file>`
 * (LFS files redirect to a CDN, which serves Range requests). Gated repositories need a token
 * (`HF_TOKEN`), sent to the Hub only, never to the CDN.
 */
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';

import { readConfig } from '../convert/config.js';
import { convertCheckpoint } from '../convert/convert.js';
import { PullError } from './errors.js';
import { downloadFile, fetchText, httpStatusError, partialPath, type Credentials, type HttpErrorMessage } from './http.js';
import { DownloadProgress, baseUrl, defaultModelsDir, ensureFreeSpace, type PullOptions, type PullResult } from './types.js';

/** `hf:<owner>/<repo>[@<revision>]` (also `huggingface:`). */
const HF_NAME = /^(?:hf|huggingface):([A-Za-z0-9][A-Za-z0-9_.-]{0,95})\/([A-Za-z0-9][A-Za-z0-9_.-]{0,95})(?:@([A-Za-z0-9_][A-Za-z0-9_./-]{0,199}))?$/;
const COMMIT = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const MAX_LISTING_BYTES = 16 * 1024 * 1024;

/** The files of a checkpoint the converter reads, besides the weights. */
const SIDE_FILES = new Set([
  'config.json', 'model.safetensors.index.json', 'tokenizer.model', 'tokenizer.json', 'tokenizer_config.json',
  'special_tokens_map.json', 'added_tokens.json', 'preprocessor_config.json', 'generation_config.json',
]);
/** A top-level safetensors file; anything with a directory part is ignored. */
const WEIGHTS_FILE = /^[A-Za-z0-9_.-]+\.safetensors$/;

/** Whether `name` names a Hugging Face repository rather than an Ollama model. */
export function isHuggingFaceName(name: string): boolean {
  return /^(?:hf|huggingface):/i.test(name);
}

interface HfRef {
  owner: string;
  repo: string;
  revision: string;
}

function parseName(name: string): HfRef {
  const m = HF_NAME.exec(name);
  if (!m || name.includes('..')) {
    throw new PullError('BAD_NAME', `invalid Hugging Face name ${JSON.stringify(name)} (expected hf:<owner>/<repo>[@revision], e.g. hf:google/paligemma-3b-mix-224)`);
  }
  return { owner: m[1]!, repo: m[2]!, revision: m[3] ?? 'main' };
}

/** One file of the listing. */
interface RemoteFile {
  name: string;
  size?: number;
  sha256?: string;
}

/** Reads the listing: the commit it is pinned to, and the files we may need. */
function parseListing(text: string, url: string): { commit: string; files: Map<string, RemoteFile> } {
  const bad = (why: string) => new PullError('BAD_RESPONSE', `the file listing from ${url} is not what the Hub sends: ${why}`, { url });
  let json: { sha?: unknown; siblings?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch (err) {
    throw bad(`not JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null) throw bad('not an object');
  if (typeof json.sha !== 'string' || !COMMIT.test(json.sha)) throw bad('no commit hash in "sha"');
  if (!Array.isArray(json.siblings)) throw bad('no "siblings" array');
  const files = new Map<string, RemoteFile>();
  for (const s of json.siblings as { rfilename?: unknown; size?: unknown; lfs?: { sha256?: unknown; size?: unknown } }[]) {
    const name = s?.rfilename;
    if (typeof name !== 'string' || !(SIDE_FILES.has(name) || WEIGHTS_FILE.test(name))) continue;
    const size = s.lfs?.size ?? s.size;
    const sha256 = s.lfs?.sha256;
    files.set(name, {
      name,
      size: Number.isSafeInteger(size) && (size as number) >= 0 ? (size as number) : undefined,
      sha256: typeof sha256 === 'string' && SHA256.test(sha256) ? sha256 : undefined,
    });
  }
  return { commit: json.sha, files };
}

function refusal(ref: HfRef, base: string, token: string | undefined): HttpErrorMessage {
  const repo = `${ref.owner}/${ref.repo}`;
  const page = `${base}/${repo}`;
  return (status, headers, url) => {
    const detail = headers.get('x-error-message');
    const said = detail ? ` (the Hub says: ${detail})` : '';
    const code = headers.get('x-error-code');
    if (status === 401) {
      return new PullError(
        'UNAUTHORIZED',
        token
          ? `the Hub did not accept the token in HF_TOKEN for ${repo} (HTTP 401)${said}; check that it is valid at ${base}/settings/tokens`
          : `${repo} needs a Hugging Face token (HTTP 401: it is gated or private, or does not exist)${said}. Accept its license at ${page}, ` +
            `create a read token at ${base}/settings/tokens and set HF_TOKEN to it`,
        { status, url },
      );
    }
    if (status === 403) {
      return new PullError(
        'FORBIDDEN',
        `your token may not download ${repo} (HTTP 403)${said}: accept the model's license at ${page} with the account the token belongs to, or use a token with read access`,
        { status, url },
      );
    }
    if (status === 404) {
      const what = code === 'RevisionNotFound' ? `no revision "${ref.revision}" in ${repo}` : code === 'EntryNotFound' ? `a file of ${repo} is missing` : `no repository ${repo} on ${new URL(base).host}`;
      return new PullError('NOT_FOUND', `${what} (HTTP 404)${said}`, { status, url });
    }
    return httpStatusError(status, url);
  };
}

/** The weights files: the shards the index names, or the single model.safetensors. */
async function weightFiles(dir: string, files: Map<string, RemoteFile>, repo: string): Promise<string[]> {
  if (!files.has('model.safetensors.index.json')) {
    if (files.has('model.safetensors')) return ['model.safetensors'];
    throw new PullError('NOT_PALIGEMMA', `${repo} has no model.safetensors or model.safetensors.index.json; paligemma converts checkpoints in safetensors (the transformers layout)`);
  }
  const file = path.join(dir, 'model.safetensors.index.json');
  let shards: string[];
  try {
    const json = JSON.parse(await readFile(file, 'utf8')) as { weight_map?: Record<string, unknown> };
    shards = [...new Set(Object.values(json.weight_map ?? {}))].map(String);
  } catch (err) {
    throw new PullError('NOT_PALIGEMMA', `${repo}: model.safetensors.index.json is not a safetensors index (${(err as Error).message})`, { cause: err });
  }
  const bad = shards.find((s) => !WEIGHTS_FILE.test(s) || !files.has(s));
  if (shards.length === 0 || bad !== undefined) {
    throw new PullError('NOT_PALIGEMMA', `${repo}: model.safetensors.index.json names ${bad === undefined ? 'no shards' : `a shard that is not in the repository: ${JSON.stringify(bad)}`}`);
  }
  return shards.sort();
}

/** Pulls `hf:<owner>/<repo>[@revision]` and converts it to `<outDir>/<repo>-<type>.gguf` and `mmproj-<repo>-<type>.gguf`. */
export async function pullFromHuggingFace(name: string, o: PullOptions): Promise<PullResult> {
  const ref = parseName(name);
  const repo = `${ref.owner}/${ref.repo}`;
  const base = baseUrl(o.huggingFaceEndpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co', 'the Hugging Face endpoint');
  const token = o.token ?? process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  const credentials: Credentials | undefined = token ? { origin: new URL(base).origin, authorization: `Bearer ${token}` } : undefined;
  const refuse = refusal(ref, base, token);

  o.onProgress?.({ phase: 'manifest', file: repo, bytesDone: 0, bytesTotal: 0 });
  const listingUrl = `${base}/api/models/${repo}/revision/${encodeURIComponent(ref.revision)}?blobs=true`;
  const { commit, files } = parseListing(await fetchText(listingUrl, { ...o, credentials, maxBytes: MAX_LISTING_BYTES, refusal: refuse }), listingUrl);
  if (!files.has('config.json')) throw new PullError('NOT_PALIGEMMA', `${repo} has no config.json, so it is not a transformers checkpoint`);
  if (!files.has('tokenizer.model') && !files.has('tokenizer.json')) throw new PullError('NOT_PALIGEMMA', `${repo} has neither tokenizer.model nor tokenizer.json`);

  const outDir = path.resolve(o.outDir ?? defaultModelsDir());
  const dir = path.join(outDir, '.downloads', 'huggingface', ref.owner, ref.repo, commit);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new PullError('IO', `cannot create ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const fetchFile = (file: RemoteFile, onBytes: (delta: number, phase: 'download' | 'verify') => void) =>
    downloadFile(`${base}/${repo}/resolve/${commit}/${encodeURIComponent(file.name)}`, path.join(dir, file.name), { size: file.size, sha256: file.sha256 }, {
      ...o,
      credentials,
      refusal: refuse,
      onBytes,
      what: `${file.name} of ${repo}`,
    });

  // The small files first: config.json tells whether this is PaliGemma before gigabytes are fetched.
  const side = [...files.values()].filter((f) => SIDE_FILES.has(f.name));
  const sideProgress = new DownloadProgress(side.reduce((sum, f) => sum + (f.size ?? 0), 0), o.onProgress);
  for (const file of side) await fetchFile(file, sideProgress.file(file.name, file.size ?? 0));
  try {
    await readConfig(path.join(dir, 'config.json'));
  } catch (err) {
    throw new PullError('NOT_PALIGEMMA', `${repo} is not a PaliGemma checkpoint: ${(err as Error).message}`, { cause: err });
  }

  const weights = (await weightFiles(dir, files, repo)).map((n) => files.get(n)!);
  const sizes = await Promise.all(weights.map((f) => sizeOfPartial(path.join(dir, f.name))));
  await ensureFreeSpace(dir, weights.reduce((sum, f, i) => sum + Math.max(0, (f.size ?? 0) - sizes[i]!), 0));
  const progress = new DownloadProgress(weights.reduce((sum, f) => sum + (f.size ?? 0), 0), o.onProgress);
  for (const file of weights) await fetchFile(file, progress.file(file.name, file.size ?? 0));

  const converted = await convertCheckpoint(dir, {
    outDir,
    outType: o.outType,
    name: ref.repo,
    onProgress: (p) => o.onProgress?.({ phase: 'convert', file: p.tensor, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
  });
  if (!o.keepDownload) await rm(dir, { recursive: true, force: true });
  return { source: 'huggingface', name: `hf:${repo}@${commit}`, modelPath: converted.textPath, projectorPath: converted.projectorPath };
}

/** Bytes of a file already downloaded, complete or partial. */
async function sizeOfPartial(file: string): Promise<number> {
  for (const f of [file, partialPath(file)]) {
    const info = await stat(f).catch(() => undefined);
    if (info) return info.size;
  }
  return 0;
}
