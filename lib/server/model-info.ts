/**
 * What the listing routes say about the served model (`/api/tags`, `/api/show`, `/api/ps`,
 * `/v1/models`), worked out once when the server is created. With the model's files (from
 * locateModelFiles) it reports sizes, dates, parameter count and weight type as Ollama does;
 * without them, what the loaded model itself knows.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';

import type { GGUFFile, GGUFValue } from '../gguf/types.js';
import type { ModelFiles } from '../model/files.js';

/** The `details` object of Ollama's listings. */
export interface OllamaDetails {
  parent_model: string;
  format: string;
  family: string;
  families: string[];
  parameter_size: string;
  quantization_level: string;
}

export interface ModelDescription {
  name: string;
  /** Bytes of the model files. */
  size: number;
  /** An identifier of the files (sha256 of their paths, sizes and modification times), not a hash of their content. */
  digest: string;
  modifiedAt: Date;
  details: OllamaDetails;
  /** Scalar metadata of the text model (arrays emptied, as Ollama shows them without `verbose`). */
  modelInfo: Record<string, unknown>;
  /** Scalar metadata of the projector. */
  projectorInfo: Record<string, unknown>;
}

/** The served model's description; `name` is what clients put in `model`. */
export function describeModel(name: string, files: ModelFiles | undefined): ModelDescription {
  const ggufs = files ? [files.text.gguf, ...(files.projector ? [files.projector.gguf] : [])] : [];
  const stats = ggufs.map((g) => statSync(g.path));
  const parameters = ggufs.reduce((n, g) => n + g.tensors.reduce((m, t) => m + t.elements, 0), 0);
  const digest = createHash('sha256');
  ggufs.forEach((g, i) => digest.update(`${g.path}\0${stats[i]!.size}\0${stats[i]!.mtimeMs}\0`));
  return {
    name,
    size: stats.reduce((n, s) => n + s.size, 0),
    digest: digest.digest('hex'),
    modifiedAt: new Date(Math.max(0, ...stats.map((s) => s.mtimeMs))),
    details: {
      parent_model: '',
      format: 'gguf',
      family: 'gemma',
      families: ['gemma', 'clip'],
      parameter_size: parameters > 0 ? humanCount(parameters) : '',
      quantization_level: files ? dominantType(files.text.gguf) : '',
    },
    modelInfo: files ? { ...scalarMetadata(files.text.gguf), 'general.parameter_count': parameters } : {},
    projectorInfo: files?.projector ? scalarMetadata(files.projector.gguf) : {},
  };
}

/** `2.9B`, `48M`: parameter counts as Ollama writes them. */
function humanCount(n: number): string {
  const [value, unit] = n >= 1e9 ? [n / 1e9, 'B'] : n >= 1e6 ? [n / 1e6, 'M'] : [n / 1e3, 'K'];
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)}${unit}`;
}

/** The weight type holding most of the file's bytes (`F16` for the published PaliGemma GGUF). */
function dominantType(gguf: GGUFFile): string {
  const bytes = new Map<string, number>();
  for (const t of gguf.tensors) bytes.set(t.type, (bytes.get(t.type) ?? 0) + t.size);
  return [...bytes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
}

function scalarMetadata(gguf: GGUFFile): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of gguf.metadata) out[key] = jsonValue(v);
  return out;
}

function jsonValue(v: GGUFValue): unknown {
  if (v.type === 'array') return [];
  if (v.type === 'u64' || v.type === 'i64') return Number(v.value);
  return v.value;
}
