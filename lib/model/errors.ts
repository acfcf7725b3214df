/**
 * ModelFilesError: what is wrong with a model's files — found while validating their headers
 * (lib/model/files.ts), while mapping them (the native model), or later, when a file changes on disk
 * under a loaded model. Apart from files.ts so that lib/native.ts can type the native failures
 * without loading the validation code.
 */
import { PaliGemmaError } from '../errors.js';

/** Why a model file (or the pair) was rejected. */
export type ModelFilesErrorCode =
  | 'BAD_OPTIONS'
  | 'WRONG_ARCHITECTURE'
  | 'BAD_METADATA'
  | 'MISSING_TENSOR'
  | 'BAD_SHAPE'
  /** A tensor has a type its role does not allow (a norm not F32), or (native) one the kernels cannot run, or it lies outside its file. */
  | 'BAD_TENSOR'
  | 'MISMATCH'
  | 'NO_PROJECTOR'
  /** The file cannot be opened or memory-mapped. */
  | 'MAP_FAILED'
  /** `lockMemory`: the OS refused to lock the weights in RAM (usually RLIMIT_MEMLOCK). */
  | 'LOCK_FAILED'
  /**
   * A loaded model's file was written to or cut short on disk (its size or modification time changed):
   * every later call on the model fails with this; load the model again. Replacing the file by a
   * rename, or deleting it, is no change: the model keeps the data it mapped.
   */
  | 'MODEL_FILE_CHANGED';

/** A typed error naming the file and what is wrong with it. */
export class ModelFilesError extends PaliGemmaError<ModelFilesErrorCode> {
  override name = 'ModelFilesError';
  constructor(
    code: ModelFilesErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(code, path ? `${path}: ${message}` : message);
  }
}
