/** The options, progress and result of {@link pullModel}, shared by both registries. */
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import type { OutType } from '../convert/convert.js';
import { PullError } from './errors.js';
import type { TransferOptions } from './http.js';

/** Options of `pullModel`. Each registry uses its own; the others are ignored. */
export interface PullOptions extends TransferOptions {
  /** Called as the pull advances (often: once per received chunk). */
  onProgress?: (progress: PullProgress) => void;

  /** Ollama: the store to write into (default `$OLLAMA_MODELS`, else `~/.ollama/models`, the store Ollama reads). */
  ollamaModelsDir?: string;
  /** Ollama: the registry's base URL (default `$PALIGEMMA_OLLAMA_REGISTRY`, else `https://<host of the name>`). */
  ollamaRegistry?: string;
  /** Ollama: refuse a model without a projector layer, before downloading it (default true). */
  requireProjector?: boolean;

  /** Hugging Face: the Hub's base URL (default `$HF_ENDPOINT`, else `https://huggingface.co`). */
  huggingFaceEndpoint?: string;
  /** Hugging Face: an access token, for gated or private repositories (default `$HF_TOKEN`). */
  token?: string;
  /** Hugging Face: where the converted GGUF files go (default {@link defaultModelsDir}). */
  outDir?: string;
  /** Hugging Face: the weight type of the converted files (default `f16`, like the published GGUF). */
  outType?: OutType;
  /** Hugging Face: keep the downloaded checkpoint after converting it (default false: it is deleted). */
  keepDownload?: boolean;
}

/** A step of a pull. */
export interface PullProgress {
  /**
   * `manifest`: asking the registry what the model consists of; `download`: fetching the files
   * (byte counts over all of them, resumed parts included); `verify`: hashing one downloaded file;
   * `convert`: converting a Hugging Face checkpoint to GGUF (source bytes).
   */
  phase: 'manifest' | 'download' | 'verify' | 'convert';
  /** The file in hand (a layer such as `model` or `projector`, a file name, or the tensor being converted). */
  file?: string;
  bytesDone: number;
  bytesTotal: number;
}

/** What a pull produced: the two files loadModel takes. */
export interface PullResult {
  source: 'ollama' | 'huggingface';
  /** The canonical name: `namespace/model:tag`, or `hf:owner/repo@<commit>`. */
  name: string;
  /** The text model GGUF. */
  modelPath: string;
  /** The projector GGUF (absent only for an Ollama model pulled with `requireProjector: false`). */
  projectorPath?: string;
}

/** Where converted models go by default: `$PALIGEMMA_MODELS`, else `$XDG_CACHE_HOME/paligemma` or `~/.cache/paligemma`. */
export function defaultModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PALIGEMMA_MODELS) return path.resolve(env.PALIGEMMA_MODELS);
  return path.join(env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache'), 'paligemma');
}

/** A base URL without a trailing slash, checked to be http(s). */
export function baseUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PullError('BAD_OPTION', `${what} must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PullError('BAD_OPTION', `${what} must be an http(s) URL, got ${JSON.stringify(value)}`);
  if (url.username || url.password) throw new PullError('BAD_OPTION', `${what} must not contain credentials; Hugging Face tokens go in HF_TOKEN`);
  return url.href.replace(/\/+$/, '');
}

/** Sums download progress over several files and reports it. */
export class DownloadProgress {
  #done = 0;
  constructor(
    private readonly total: number,
    private readonly onProgress: PullOptions['onProgress'],
  ) {}

  /** The `onBytes` of one file's download: download bytes add to the sum, verify bytes count per file. */
  file(name: string, size: number): (delta: number, phase: 'download' | 'verify') => void {
    let verified = 0;
    return (delta, phase) => {
      if (phase === 'verify') {
        verified += delta;
        this.onProgress?.({ phase, file: name, bytesDone: verified, bytesTotal: size });
      } else {
        this.#done += delta;
        this.onProgress?.({ phase, file: name, bytesDone: this.#done, bytesTotal: this.total });
      }
    };
  }
}

const GB = (bytes: number) => `${(bytes / 1e9).toFixed(bytes < 1e8 ? 3 : 1)} GB`;

/** Refuses to start a download that cannot fit on the disk (when the free space can be known). */
export async function ensureFreeSpace(dir: string, bytes: number): Promise<void> {
  if (bytes <= 0) return;
  const info = await statfs(dir).catch(() => undefined);
  if (!info) return;
  const free = info.bavail * info.bsize;
  if (free < bytes) throw new PullError('NO_SPACE', `the download needs ${GB(bytes)} in ${dir}, but only ${GB(free)} are free`);
}
