/**
 * BullMQ is an optional peer dependency: only queue users install it. It is imported when a
 * worker starts, and its absence is an error that says what to install. (Not re-exported by the
 * package: its types name bullmq's, which users without bullmq do not have.)
 */
import { MissingDependencyError } from './errors.js';

/** Imports an optional package, or throws MissingDependencyError naming it and what needs it. */
export async function importOptional<T>(name: string, purpose: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && (err as Error).message.includes(`'${name}'`))
      throw new MissingDependencyError(`${purpose} needs the ${name} package, which is not installed; run: npm install ${name}`);
    throw err;
  }
}

export function loadBullmq(): Promise<typeof import('bullmq')> {
  return importOptional<typeof import('bullmq')>('bullmq', 'the paligemma queue worker (BullMQ on Redis)');
}
