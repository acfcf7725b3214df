import { PaliGemmaError } from '../errors.js';

/** A package the queue features need is not installed (bullmq, an optional peer dependency). */
export class MissingDependencyError extends PaliGemmaError<'MISSING_DEPENDENCY'> {
  override name = 'MissingDependencyError';
  constructor(message: string, options?: ErrorOptions) {
    super('MISSING_DEPENDENCY', message, options);
  }
}
