/**
 * Paths given on the command line, checked before anything heavy starts: a typo or a directory
 * should cost a line of output, not a model load, and should be said in plain words.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { CliError } from './errors.js';
import { checkRegularFile, isMissingFile, readRegularFile, type FileErrorFactory, type FileProblem } from '../files.js';

/** What to do about a directory given where a file belongs: name the files in it that fit. */
async function directoryHint(dir: string, extensions: readonly string[]): Promise<string | undefined> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const fits = names.filter((n) => extensions.some((e) => n.toLowerCase().endsWith(e))).sort();
  if (fits.length === 0) return `give the path of a ${extensions.join(' or ')} file, not of a directory`;
  const shown = fits.slice(0, 4).map((n) => path.join(dir, n));
  return `it holds ${shown.join(', ')}${fits.length > shown.length ? ', …' : ''}: give one of those`;
}

/**
 * Runs a file helper of lib/files.ts; its failure becomes a CliError naming `what` and the file,
 * with "check the path" for a missing file, else the hint `hint` gives for the problem.
 */
async function asCliError<T>(
  what: string,
  file: string,
  run: (fail: FileErrorFactory) => Promise<T>,
  hint: (problem: FileProblem) => Promise<string | undefined> | string | undefined,
): Promise<T> {
  let problem: FileProblem | undefined;
  let missing = false;
  const fail: FileErrorFactory = (p, message, _path, cause) => {
    problem = p;
    missing = p === 'IO' && isMissingFile(cause);
    return new CliError(`${what ? `${what} ` : ''}${file}: ${message}`);
  };
  try {
    return await run(fail);
  } catch (err) {
    if (problem === undefined || !(err instanceof CliError)) throw err;
    throw new CliError(err.message, missing ? 'check the path' : await hint(problem));
  }
}

/**
 * Checks that `file`, given as `what` (e.g. `--model`; may be empty), is a regular file (`kind`, e.g.
 * "a GGUF file"); returns its size. For a directory the hint names the files with one of `extensions`
 * inside it.
 */
export async function checkFileArgument(what: string, file: string, kind: string, extensions: readonly string[]): Promise<number> {
  const checked = await asCliError(what, file, (fail) => checkRegularFile(file, kind, fail), async (problem) =>
    problem === 'NOT_A_FILE' && (await stat(file).catch(() => undefined))?.isDirectory() ? directoryHint(file, extensions) : undefined);
  return checked.size;
}

/** Reads an image file given on the command line (a regular file of at most `maxBytes`). */
export async function readFileArgument(what: string, file: string, maxBytes: number): Promise<Buffer> {
  return asCliError(what, file, (fail) => readRegularFile(file, 'an image file', fail, maxBytes), (problem) =>
    problem === 'NOT_A_FILE' ? 'use - to read an image from standard input' : undefined);
}
