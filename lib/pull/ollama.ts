/**
 * Pulling from an Ollama registry into the Ollama store, the way `ollama pull` lays it out, so
 * Ollama sees the model too and `loadModel({ ollama })` finds it. The registry speaks the OCI
 * distribution protocol: the manifest is at `/v2/<namespace>/<model>/manifests/<tag>`, each blob at
 * `/v2/<namespace>/<model>/blobs/<digest>` (usually a redirect to a CDN, which serves Range
 * requests). Blobs are verified against their digests; the manifest is written last.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

import {
  OLLAMA_MEDIA_TYPES,
  blobPath,
  formatOllamaName,
  ollamaModelsDir,
  parseManifest,
  parseOllamaName,
  resolveOllamaModel,
  writeManifest,
  type OllamaDescriptor,
  type OllamaModelRef,
} from '../ollama/store.js';
import { PullError } from './errors.js';
import { downloadFile, fetchText, httpStatusError, partialPath, type HttpErrorMessage } from './http.js';
import { DownloadProgress, baseUrl, ensureFreeSpace, type PullOptions, type PullResult } from './types.js';

/** What Ollama asks a registry for (and what registry.ollama.ai serves). */
const MANIFEST_ACCEPT = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json';
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

function parseName(name: string): OllamaModelRef {
  try {
    return parseOllamaName(name);
  } catch (err) {
    throw new PullError('BAD_NAME', `${(err as Error).message}; Hugging Face repositories are named hf:<owner>/<repo>`, { cause: err });
  }
}

/** `model`, `projector`, `template`… for a layer's media type; `config` for the config blob. */
function layerName(blob: OllamaDescriptor): string {
  const kind = blob.mediaType.startsWith('application/vnd.ollama.image.') ? blob.mediaType.slice('application/vnd.ollama.image.'.length) : 'config';
  return `${kind} ${blob.digest.slice(7, 19)}`;
}

function refusal(short: string): HttpErrorMessage {
  return (status, _headers, url) => {
    const origin = new URL(url).origin;
    if (status === 404) return new PullError('NOT_FOUND', `${origin} has no model ${short} (HTTP 404); check the name and tag (https://ollama.com/search lists the public models)`, { status, url });
    if (status === 401) return new PullError('UNAUTHORIZED', `${origin} asks for credentials for ${short} (HTTP 401); paligemma pulls public models only, pull private ones with \`ollama pull\``, { status, url });
    if (status === 403) return new PullError('FORBIDDEN', `${origin} refused access to ${short} (HTTP 403)`, { status, url });
    return httpStatusError(status, url);
  };
}

async function sizeOf(file: string): Promise<number | undefined> {
  return (await stat(file).catch(() => undefined))?.size;
}

/** Pulls an Ollama model (`[host/][namespace/]model[:tag]`) into the local Ollama store. */
export async function pullFromOllama(name: string, o: PullOptions): Promise<PullResult> {
  const ref = parseName(name);
  const short = formatOllamaName(ref);
  const base = baseUrl(o.ollamaRegistry ?? process.env.PALIGEMMA_OLLAMA_REGISTRY ?? `https://${ref.host}`, 'the Ollama registry URL');
  const repository = `${base}/v2/${ref.namespace}/${ref.model}`;
  const refuse = refusal(short);

  o.onProgress?.({ phase: 'manifest', file: short, bytesDone: 0, bytesTotal: 0 });
  const text = await fetchText(`${repository}/manifests/${ref.tag}`, { ...o, accept: MANIFEST_ACCEPT, maxBytes: MAX_MANIFEST_BYTES, refusal: refuse });
  const manifest = parseManifest(text, (why) => new PullError('BAD_RESPONSE', `the manifest ${base} sent for ${short} is not valid: ${why}`));
  const models = manifest.layers.filter((l) => l.mediaType === OLLAMA_MEDIA_TYPES.model);
  if (models.length !== 1) {
    throw new PullError('NO_MODEL_LAYER', `${short} has ${models.length} GGUF model layers (${OLLAMA_MEDIA_TYPES.model}); expected exactly one, so it is not a model paligemma can run`);
  }
  if (o.requireProjector !== false && !manifest.layers.some((l) => l.mediaType === OLLAMA_MEDIA_TYPES.projector)) {
    throw new PullError(
      'NO_PROJECTOR',
      `${short} has no projector layer (${OLLAMA_MEDIA_TYPES.projector}), so it cannot see images; nothing was downloaded. ` +
        'Pull a PaliGemma model that has one, or pull hf:google/paligemma-3b-mix-224, which converts both files from the Hugging Face checkpoint. ' +
        'To download this text model anyway and pair it with a projector GGUF of your own, pull it with requireProjector: false (--without-projector) ' +
        'and give the projector when loading (loadModel({ ollama, projector }), --projector).',
    );
  }

  const store = path.resolve(o.ollamaModelsDir ?? ollamaModelsDir());
  const blobs = [...new Map([...(manifest.config ? [manifest.config] : []), ...manifest.layers].map((b) => [b.digest, b])).values()];
  const sizes = await Promise.all(blobs.map(async (b) => (await sizeOf(blobPath(store, b.digest))) ?? (await sizeOf(partialPath(blobPath(store, b.digest)))) ?? 0));
  try {
    await mkdir(path.join(store, 'blobs'), { recursive: true });
  } catch (err) {
    throw new PullError('IO', `cannot create the Ollama store at ${store}: ${(err as Error).message}`, { cause: err });
  }
  await ensureFreeSpace(path.join(store, 'blobs'), blobs.reduce((sum, b, i) => sum + Math.max(0, b.size - sizes[i]!), 0));

  const progress = new DownloadProgress(blobs.reduce((sum, b) => sum + b.size, 0), o.onProgress);
  for (const blob of blobs) {
    await downloadFile(`${repository}/blobs/${blob.digest}`, blobPath(store, blob.digest), { size: blob.size, sha256: blob.digest.slice(7) }, {
      ...o,
      refusal: refuse,
      onBytes: progress.file(layerName(blob), blob.size),
      what: `the ${layerName(blob)} layer of ${short}`,
    });
  }
  await writeManifest(store, ref, text);
  const files = await resolveOllamaModel(name, { modelsDir: store, requireProjector: o.requireProjector !== false });
  return { source: 'ollama', name: short, modelPath: files.modelPath, projectorPath: files.projectorPath };
}
