/**
 * Paths given on the command line, checked before anything heavy starts: a typo or a directory
 * should cost a line of output, not a model load, and should be said in plain words.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';

import { CliError } from './errors.js';
import { readRegularFile, regularFileSize, RegularFileError } from '../regular-file.js';

/** What to do about a directory given where a file belongs: name the files in it that fit. */
async function directoryHint(dir: string, extensions: readonly string[]): Promise<string | undefined> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const fits = names.filter((n) => extensions.some((e) => n.toLowerCase().endsWith(e))).sort();
  if (fits.length === 0) return `give the path of a ${extensions.join(' or ')} file, not of a directory`;
  const shown = fits.slice(0, 4).map((n) => path.join(dir, n));
  return `it holds ${shown.join(', ')}${fits.length > shown.length ? ', …' : ''}: give one of those`;
}

function cliError(what: string, file: string, err: RegularFileError, hint?: string): CliError {
  return new CliError(`${what ? `${what} ` : ''}${file}: ${err.message}`, hint ?? (err.code === 'NOT_FOUND' ? 'check the path' : undefined));
}

/**
 * Checks that `file`, given as `what` (e.g. `--model`; may be empty), is a regular file; returns its
 * size. For a directory the hint names the files with one of `extensions` inside it.
 */
export async function checkFileArgument(what: string, file: string, extensions: readonly string[]): Promise<number> {
  try {
    return await regularFileSize(file);
  } catch (err) {
    if (!(err instanceof RegularFileError)) throw err;
    throw cliError(what, file, err, err.code === 'NOT_A_FILE' ? await directoryHint(file, extensions) : undefined);
  }
}

/** Reads an image file given on the command line (a regular file of at most `maxBytes`). */
export async function readFileArgument(what: string, file: string, maxBytes: number): Promise<Buffer> {
  try {
    return await readRegularFile(file, maxBytes);
  } catch (err) {
    if (!(err instanceof RegularFileError)) throw err;
    throw cliError(what, file, err, err.code === 'NOT_A_FILE' ? 'use - to read an image from standard input' : undefined);
  }
}
