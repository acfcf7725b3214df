/** A package the queue features need is not installed (bullmq, an optional peer dependency). */
export class MissingDependencyError extends Error {
  override name = 'MissingDependencyError';
  readonly code = 'MISSING_DEPENDENCY';
}
