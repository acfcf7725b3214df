/**
 * Helpers of the reliability tests: variants of the tiny fixture's GGUF files, a watch on the
 * native model handle (to prove that a call was refused before any native work), and the process's
 * memory as the kernel reports it.
 */
import { readFileSync } from 'node:fs';

import { readGGUF, writeGGUF, type GGUFTensorInput, type GGUFValue } from '../../lib/gguf/index.js';
import { native, type NativeModelSpec } from '../../lib/native.js';

/** How to change a GGUF file: edit its metadata in place, and map its tensor list. */
export interface GGUFEdit {
  metadata?: (metadata: Map<string, GGUFValue>) => void;
  /** Tensors keep their data unless the edit drops or replaces it (a tensor without data is zeros). */
  tensors?: (tensors: GGUFTensorInput[]) => GGUFTensorInput[];
}

/** Writes `dst`: the GGUF file `src` with `edit` applied. Tensor data is copied from `src`. */
export async function rewriteGGUF(src: string, dst: string, edit: GGUFEdit = {}): Promise<void> {
  const gguf = await readGGUF(src);
  const bytes = readFileSync(src);
  const metadata = new Map(gguf.metadata);
  metadata.delete('general.alignment'); // the writer's default, as the converter writes it
  edit.metadata?.(metadata);
  let tensors: GGUFTensorInput[] = gguf.tensors.map((t) => ({
    name: t.name,
    type: t.type,
    dims: [...t.dims],
    data: bytes.subarray(t.offset, t.offset + t.size),
  }));
  if (edit.tensors) tensors = edit.tensors(tensors);
  await writeGGUF(dst, { metadata, tensors });
}

/** `tensors` with the one named `name` replaced by `change(it)` (or dropped when it returns undefined). */
export function withTensor(
  tensors: GGUFTensorInput[],
  name: string,
  change: (t: GGUFTensorInput) => GGUFTensorInput | undefined,
): GGUFTensorInput[] {
  if (!tensors.some((t) => t.name === name)) throw new Error(`no tensor ${name} to change`);
  return tensors.flatMap((t) => (t.name !== name ? [t] : (change(t) ?? [])));
}

/** Every native model handle created while watching, and every method called on them. */
export interface NativeWatch {
  /** Handles whose construction was attempted (mapping the files is the first heavy step). */
  constructed: number;
  /** Method names in call order, over all watched handles. */
  calls: string[];
  restore(): void;
}

/**
 * Replaces the addon's NativeModel constructor with one that records constructions and method
 * calls, so a test can assert that a bad call never reached native code. Call `restore()` after.
 */
export function watchNativeModel(): NativeWatch {
  const Real = native.NativeModel;
  const watch: NativeWatch = {
    constructed: 0,
    calls: [],
    restore: () => {
      native.NativeModel = Real;
    },
  };
  native.NativeModel = class Watched extends Real {
    constructor(spec: NativeModelSpec) {
      watch.constructed++;
      super(spec);
      // Every method call is recorded on its way to the native handle.
      return new Proxy(this, {
        get(target, key) {
          const value: unknown = Reflect.get(target, key, target);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            watch.calls.push(String(key));
            return value.apply(target, args);
          };
        },
      });
    }
  };
  return watch;
}

/** Resident memory of this process in bytes, from /proc/self/status (Linux). */
export function residentMemory(): { rss: number; rssFile: number; rssAnon: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`/proc/self/status has no ${key}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), rssFile: kb('RssFile'), rssAnon: kb('RssAnon') };
}

/** Whether this process has `path` memory-mapped (from /proc/self/maps). */
export function isMapped(path: string): boolean {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .some((line) => line.endsWith(` ${path}`));
}

/**
 * Runs `fn` and returns the error it throws or rejects with; fails when it succeeds. For
 * asserting on several properties of one error.
 */
export async function caught(fn: () => unknown): Promise<Error & { code?: string }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error, but the call succeeded');
}
