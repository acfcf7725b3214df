/**
 * A model whose native handle logs every call it receives, in the order the native side sees them:
 * which sequences a decode step, prefill chunk or release concerned, and how many images a vision
 * batch held. For tests of the step scheduler, in the library and through the server.
 */
import type { ConvertResult } from '../../lib/convert/index.js';
import { loadModel, type LoadModelOptions, type PaliGemma } from '../../lib/model/paligemma.js';
import { native, type NativeModelSpec } from '../../lib/native.js';
import { pixelValues } from './golden.js';

/** One native call: the sequences it ran (decode, prefill, continuePrefill, releaseSequence) or the images it encoded. */
export interface NativeCall {
  method: string;
  sequences: number[];
  images?: number;
}

/** Values of one preprocessed image of the tiny model ([3, S, S]). */
const IMAGE_VALUES = pixelValues('img_a1.png').length;

/** What {@link recordedModel} gives. */
export interface RecordedModel {
  model: PaliGemma;
  /** Every native call so far. */
  log: NativeCall[];
  /**
   * Called as each call is made, before it reaches native code (it may abort requests, which then
   * leave while the call is in flight); a returned promise holds the call back until it settles.
   */
  onCall: { fn?: (call: NativeCall) => void | Promise<void> };
}

/** Loads the tiny model of `files` with its native calls recorded. */
export async function recordedModel(files: ConvertResult, options: Partial<LoadModelOptions> = {}): Promise<RecordedModel> {
  const log: NativeCall[] = [];
  const onCall: RecordedModel['onCall'] = {};
  const Real = native.NativeModel;
  native.NativeModel = class Recorded extends Real {
    constructor(spec: NativeModelSpec) {
      super(spec);
      const wrap = (method: string, describe: (args: [never]) => NativeCall) => {
        const real = (Real.prototype as unknown as Record<string, (...args: unknown[]) => unknown>)[method]!.bind(this);
        // The addon's methods are read-only on its prototype: shadow them with own properties.
        Object.defineProperty(this, method, {
          value: (...args: [never]) => {
            const call = describe(args);
            log.push(call);
            const hold = onCall.fn?.(call);
            // Synchronous calls (releaseSequence) stay synchronous.
            return hold ? hold.then(() => real(...args)) : real(...args);
          },
        });
      };
      wrap('encodeImages', ([pixels]: [Float32Array]) => ({ method: 'encodeImages', sequences: [], images: pixels.length / IMAGE_VALUES }));
      for (const method of ['prefill', 'continuePrefill', 'releaseSequence'])
        wrap(method, ([sequence]: [number]) => ({ method, sequences: [sequence] }));
      wrap('decode', ([sequences]: [Int32Array]) => ({ method: 'decode', sequences: [...sequences] }));
    }
  };
  try {
    const model = await loadModel({ model: files.textPath, projector: files.projectorPath, ...options });
    return { model, log, onCall };
  } finally {
    native.NativeModel = Real;
  }
}

/** The decode steps of a log. */
export const decodes = (log: NativeCall[]): NativeCall[] => log.filter((c) => c.method === 'decode');

/** A call in a few words: `decode 0,1`, `prefill 1`, `encodeImages 3`. */
export const short = (c: NativeCall): string => `${c.method} ${c.images ?? c.sequences.join(',')}`;
