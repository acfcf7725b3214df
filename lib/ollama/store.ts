/**
 * The local Ollama store: resolves a model name (`[host/][namespace/]model[:tag]`) to the GGUF blobs it
 * consists of, and writes manifests for `paligemma pull`. `<store>/manifests/<host>/<namespace>/<model>/<tag>`
 * is a JSON manifest whose layers name blobs `<store>/blobs/sha256-<hex>` by digest and media type.
 * Names are validated part by part so that no name can reach outside the store.
 */
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { openRegularFile, readRegularFile, type FileErrorFactory } from '../files.js';

import { PaliGemmaError } from '../errors.js';

/** Why an Ollama model could not be resolved. */
export type OllamaErrorCode =
  | 'BAD_NAME'
  | 'NOT_FOUND'
  | 'BAD_MANIFEST'
  | 'MISSING_BLOB'
  | 'BAD_BLOB'
  | 'NO_MODEL_LAYER'
  | 'NO_PROJECTOR'
  | 'IO';

/** A typed error that says what is wrong and what to do about it. */
export class OllamaError extends PaliGemmaError<OllamaErrorCode> {
  override name = 'OllamaError';
  constructor(
    code: OllamaErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(code, message);
  }
}

/** A parsed model name. */
export interface OllamaModelRef {
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

/** Media types of the layers this package uses. */
export const OLLAMA_MEDIA_TYPES = {
  model: 'application/vnd.ollama.image.model',
  projector: 'application/vnd.ollama.image.projector',
} as const;

const DEFAULT_HOST = 'registry.ollama.ai';
const DEFAULT_NAMESPACE = 'library';
const DEFAULT_TAG = 'latest';
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

// One path component each: starts with a letter or digit, no separators, so never '.', '..' or absolute.
const NAME_PART = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const HOST = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}(?::[0-9]{1,5})?$/;
const DIGEST = /^sha256:([0-9a-f]{64})$/;

function badName(name: string, why: string): OllamaError {
  return new OllamaError('BAD_NAME', `invalid Ollama model name ${JSON.stringify(name)}: ${why} (expected [host/][namespace/]model[:tag], e.g. jyan1/paligemma-mix-224)`);
}

/** Parses `[host/][namespace/]model[:tag]`, defaulting to registry.ollama.ai, library and latest. */
export function parseOllamaName(name: string): OllamaModelRef {
  if (typeof name !== 'string' || name.length === 0) throw badName(String(name), 'empty');
  if (name.length > 512) throw badName(name.slice(0, 40) + '…', 'too long');
  if (name.includes('\\') || name.includes('\0')) throw badName(name, 'contains a backslash or NUL');
  if (name.startsWith('/')) throw badName(name, 'absolute paths are not model names');
  const parts = name.split('/');
  const last = parts.pop()!;
  const colon = last.indexOf(':');
  const model = colon < 0 ? last : last.slice(0, colon);
  const tag = colon < 0 ? DEFAULT_TAG : last.slice(colon + 1);
  if (parts.length > 2) throw badName(name, 'too many "/"-separated parts');
  const namespace = parts.pop() ?? DEFAULT_NAMESPACE;
  const host = parts.pop() ?? DEFAULT_HOST;
  for (const [what, value, pattern] of [['host', host, HOST], ['namespace', namespace, NAME_PART], ['model', model, NAME_PART]] as const) {
    if (!pattern.test(value) || value.includes('..')) throw badName(name, `bad ${what} ${JSON.stringify(value)}`);
  }
  if (!TAG.test(tag) || tag.includes('..')) throw badName(name, `bad tag ${JSON.stringify(tag)}`);
  return { host, namespace, model, tag };
}

/** The canonical short form: `namespace/model:tag`, without the default host and namespace. */
export function formatOllamaName(ref: OllamaModelRef): string {
  const prefix = ref.host !== DEFAULT_HOST ? `${ref.host}/${ref.namespace}/` : ref.namespace !== DEFAULT_NAMESPACE ? `${ref.namespace}/` : '';
  return `${prefix}${ref.model}:${ref.tag}`;
}

/** The store directory: `$OLLAMA_MODELS`, else `~/.ollama/models`. */
export function ollamaModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.OLLAMA_MODELS ? path.resolve(env.OLLAMA_MODELS) : path.join(os.homedir(), '.ollama', 'models');
}

/** A blob a manifest refers to: its media type, `sha256:<hex>` digest and size. */
export interface OllamaDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** One layer of a manifest. */
export interface OllamaLayer extends OllamaDescriptor {
  /** The blob's path in the store. */
  path: string;
}

/** A resolved model: the files that make it up. */
export interface OllamaModelFiles {
  ref: OllamaModelRef;
  /** `namespace/model:tag`. */
  name: string;
  manifestPath: string;
  /** The text model GGUF blob. */
  modelPath: string;
  /** The projector GGUF blob, when the manifest has one. */
  projectorPath?: string;
  layers: OllamaLayer[];
}

/** Options of `resolveOllamaModel`. */
export interface ResolveOllamaOptions {
  /** The store; default `ollamaModelsDir()`. */
  modelsDir?: string;
  /** Fail with NO_PROJECTOR when the model has no projector layer (default true). */
  requireProjector?: boolean;
  /** Hash the blobs used and compare with their digests (reads every byte; default false). */
  verifyDigests?: boolean;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A manifest's blobs: the layers, and the config blob when there is one. */
export interface OllamaManifest {
  config?: OllamaDescriptor;
  layers: OllamaDescriptor[];
}

/**
 * Validates a manifest's JSON: every layer (and the config, if any) has a media type, a
 * `sha256:<64 hex>` digest and a size. `bad` makes the error for a reason (the caller knows whether
 * the manifest came from the store or from a registry).
 */
export function parseManifest(text: string, bad: (why: string) => Error): OllamaManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw bad(`not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(json) || !Array.isArray(json.layers)) throw bad('no "layers" array');
  const descriptor = (value: unknown, where: string): OllamaDescriptor => {
    if (!isObject(value)) throw bad(`${where} is not an object`);
    const { mediaType, digest, size } = value;
    if (typeof mediaType !== 'string') throw bad(`${where}.mediaType is not a string`);
    if (typeof digest !== 'string' || !DIGEST.test(digest)) throw bad(`${where}.digest is ${JSON.stringify(digest)}, not sha256:<64 hex digits>`);
    if (!Number.isSafeInteger(size) || (size as number) < 0) throw bad(`${where}.size is ${JSON.stringify(size)}`);
    return { mediaType, digest, size: size as number };
  };
  return {
    config: json.config === undefined ? undefined : descriptor(json.config, 'config'),
    layers: json.layers.map((layer, i) => descriptor(layer, `layers[${i}]`)),
  };
}

/** OllamaErrors for the file helpers: `code` for a file that is not what the store should hold. */
function storeFileError(code: OllamaErrorCode): FileErrorFactory {
  return (problem, message, file) => new OllamaError(problem === 'IO' ? 'IO' : code, `cannot read ${file}: ${message}`, file);
}

/** Where a blob of digest `sha256:<hex>` lives in the store: `<store>/blobs/sha256-<hex>`. */
export function blobPath(store: string, digest: string): string {
  const hex = DIGEST.exec(digest)?.[1];
  if (!hex) throw new OllamaError('BAD_MANIFEST', `${JSON.stringify(digest)} is not a digest of the form sha256:<64 hex digits>`);
  return path.join(path.resolve(store), 'blobs', `sha256-${hex}`);
}

/** Where the manifest of a model lives in the store: `<store>/manifests/<host>/<namespace>/<model>/<tag>`. */
export function manifestPath(store: string, ref: OllamaModelRef): string {
  const manifestsDir = path.join(path.resolve(store), 'manifests');
  const file = path.join(manifestsDir, ref.host, ref.namespace, ref.model, ref.tag);
  // The name parts cannot contain separators or '..' (parseOllamaName), so this holds; checked anyway as a last line of defence.
  if (!file.startsWith(manifestsDir + path.sep)) throw badName(formatOllamaName(ref), 'escapes the model store');
  return file;
}

/**
 * Writes a model's manifest into the store, last, once its blobs are in place: through a temporary
 * file and a rename, so Ollama and resolveOllamaModel never see half a manifest.
 */
export async function writeManifest(store: string, ref: OllamaModelRef, text: string): Promise<string> {
  const file = manifestPath(store, ref);
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temp, text);
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw new OllamaError('IO', `cannot write the manifest ${file}: ${(err as Error).message}`, file);
  }
  return file;
}

/** The sha256 of a file, in hex; `onBytes` is told how far the hashing got. */
export async function sha256File(file: string, onBytes?: (bytes: number) => void): Promise<string> {
  const hash = createHash('sha256');
  const { handle } = await openRegularFile(file, 'an Ollama blob', storeFileError('BAD_BLOB'));
  try {
    for await (const chunk of handle.createReadStream({ autoClose: false, highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      onBytes?.((chunk as Buffer).length);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  return hash.digest('hex');
}

/** Checks that a layer's blob exists with the manifest's size (and digest, when asked). */
async function checkBlob(layer: OllamaLayer, name: string, verify: boolean): Promise<void> {
  const info = await stat(layer.path).catch(() => undefined);
  if (!info?.isFile()) {
    throw new OllamaError('MISSING_BLOB', `blob ${path.basename(layer.path)} (${layer.mediaType}) of ${name} is missing from the store; the download is incomplete — run \`paligemma pull ${name}\` (or \`ollama pull ${name}\`) again`, layer.path);
  }
  if (info.size !== layer.size) {
    throw new OllamaError('BAD_BLOB', `blob ${path.basename(layer.path)} of ${name} has ${info.size} bytes but the manifest says ${layer.size}; run \`paligemma pull ${name}\` (or \`ollama pull ${name}\`) again`, layer.path);
  }
  if (verify && `sha256:${await sha256File(layer.path)}` !== layer.digest) {
    throw new OllamaError('BAD_BLOB', `blob ${path.basename(layer.path)} of ${name} does not match its digest; run \`paligemma pull ${name}\` (or \`ollama pull ${name}\`) again`, layer.path);
  }
}

/**
 * Resolves `name` in the local Ollama store to its text GGUF blob (media type
 * application/vnd.ollama.image.model) and projector blob (application/vnd.ollama.image.projector).
 */
export async function resolveOllamaModel(name: string, options: ResolveOllamaOptions = {}): Promise<OllamaModelFiles> {
  const ref = parseOllamaName(name);
  const shortName = formatOllamaName(ref);
  const store = path.resolve(options.modelsDir ?? ollamaModelsDir());
  const manifestFile = manifestPath(store, ref);

  const info = await stat(manifestFile).catch(() => undefined);
  if (!info?.isFile()) {
    throw new OllamaError(
      'NOT_FOUND',
      `Ollama model ${shortName} is not in the store at ${store} (no ${path.relative(store, manifestFile)}); ` +
        `run \`paligemma pull ${shortName}\` (or \`ollama pull ${shortName}\`), or set OLLAMA_MODELS to the store that has it`,
      manifestFile,
    );
  }
  if (info.size > MAX_MANIFEST_BYTES) {
    throw new OllamaError('BAD_MANIFEST', `corrupt Ollama manifest ${manifestFile}: ${info.size} bytes is too large for a manifest`, manifestFile);
  }
  const text = (await readRegularFile(manifestFile, 'an Ollama manifest', storeFileError('BAD_MANIFEST'), MAX_MANIFEST_BYTES)).toString('utf8');
  const bad = (why: string) => new OllamaError('BAD_MANIFEST', `corrupt Ollama manifest ${manifestFile}: ${why}; re-pull the model with \`paligemma pull ${shortName}\` or \`ollama pull\``, manifestFile);
  const layers = parseManifest(text, bad).layers.map((layer) => ({ ...layer, path: blobPath(store, layer.digest) }));

  const models = layers.filter((l) => l.mediaType === OLLAMA_MEDIA_TYPES.model);
  const projectors = layers.filter((l) => l.mediaType === OLLAMA_MEDIA_TYPES.projector);
  if (models.length !== 1) {
    throw new OllamaError('NO_MODEL_LAYER', `Ollama model ${shortName} has ${models.length} layers of type ${OLLAMA_MEDIA_TYPES.model}; expected exactly one GGUF model`, manifestFile);
  }
  if (projectors.length > 1) {
    throw new OllamaError('BAD_MANIFEST', `Ollama model ${shortName} has ${projectors.length} projector layers; expected at most one`, manifestFile);
  }
  const projector = projectors[0];
  if (!projector && options.requireProjector !== false) {
    throw new OllamaError(
      'NO_PROJECTOR',
      `Ollama model ${shortName} has no projector layer (${OLLAMA_MEDIA_TYPES.projector}), so it cannot see images. ` +
        'Pass a projector GGUF yourself (loadModel({ ollama, projector: "mmproj.gguf" }), or --projector on the command line); ' +
        'make one from the Hugging Face checkpoint with `paligemma convert <hf-dir> --out <dir>`, which writes mmproj-<name>-f16.gguf.',
      manifestFile,
    );
  }
  const verify = options.verifyDigests === true;
  await checkBlob(models[0]!, shortName, verify);
  if (projector) await checkBlob(projector, shortName, verify);
  return { ref, name: shortName, manifestPath: manifestFile, modelPath: models[0]!.path, projectorPath: projector?.path, layers };
}
