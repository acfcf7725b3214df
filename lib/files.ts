/**
 * Opening a user-given file for reading, safely: only regular files are read. A FIFO, a character
 * device or a socket given as a path would block a libuv thread in open() or read() forever (a
 * FIFO without a writer never answers); a directory fails later with a confusing message.
 *
 * A path may also be a `file:` URL (a URL object or a string starting with `file:`, e.g.
 * `new URL('./model.gguf', import.meta.url)`): it is converted to a path, which every error and
 * result then names. Other URL schemes are refused; nothing is downloaded.
 */
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A local file: a path, or a `file:` URL as a URL object or a string. */
export type FileLocation = string | URL;

/** Why a file could not be read: not a regular file, an I/O error, or larger than the caller's limit. */
export type FileProblem = 'NOT_A_FILE' | 'IO' | 'TOO_LARGE';

/**
 * Builds the caller's own typed error (each module keeps its error class): `message` does not name
 * the file; `path` does (the converted path when a `file:` URL was given).
 */
export type FileErrorFactory = (problem: FileProblem, message: string, path: string, cause?: unknown) => Error;

/** A regular file opened for reading. The caller closes `handle`. */
export interface OpenedFile {
  /** The path opened (a `file:` URL converted to a path). */
  path: string;
  handle: FileHandle;
  /** Size in bytes when opened. */
  size: number;
}

/**
 * Opening without O_NONBLOCK blocks on a FIFO until a writer appears; with it, open() returns at
 * once and fstat then tells what was opened. O_NOCTTY keeps a terminal device from becoming the
 * controlling terminal. Both are 0 where they do not exist (Windows).
 */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

/** The path of a {@link FileLocation}; throws through `fail` for a URL that is not a `file:` URL. */
export function localPath(file: FileLocation, fail: FileErrorFactory): string {
  const text = String(file);
  if (typeof file === 'string' && !/^file:/i.test(file)) return file;
  if (typeof file !== 'string' && !(file instanceof URL)) throw fail('NOT_A_FILE', 'is not a path (a string or a file: URL)', text);
  if (file instanceof URL && file.protocol !== 'file:') {
    throw fail('NOT_A_FILE', `is a ${file.protocol} URL; only local paths and file: URLs can be read`, text);
  }
  try {
    return fileURLToPath(file);
  } catch (cause) {
    throw fail('NOT_A_FILE', `is not a valid file: URL (${(cause as Error).message})`, text, cause);
  }
}

/**
 * Opens `file` for reading if it is a regular file (symbolic links followed), else throws through
 * `fail` with NOT_A_FILE and a message in plain words ("is a directory, not a GGUF file"). `what` names
 * the expected content, with its article: "a GGUF file". Nothing is read from anything but a regular
 * file, and a FIFO swapped in between the checks cannot block either.
 */
export async function openRegularFile(file: FileLocation, what: string, fail: FileErrorFactory): Promise<OpenedFile> {
  const path = localPath(file, fail);
  // Checked before open(), so a device is never even opened; checked again on the handle below.
  await checkRegularFile(path, what, fail);
  let handle: FileHandle;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (cause) {
    throw fail('IO', openFailure(cause), path, cause);
  }
  try {
    let opened: Stats;
    try {
      opened = await handle.stat();
    } catch (cause) {
      throw fail('IO', `cannot stat: ${(cause as Error).message}`, path, cause);
    }
    refuseIrregular(opened, path, what, fail);
    return { path, handle, size: opened.size };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Checks without opening it that `file` is an existing regular file (symbolic links followed):
 * `fail` gets NOT_A_FILE in plain words, or IO with the errno in `cause` ("no such file",
 * "permission denied"). Returns its path and size.
 */
export async function checkRegularFile(file: FileLocation, what: string, fail: FileErrorFactory): Promise<{ path: string; size: number }> {
  const path = localPath(file, fail);
  let info: Stats;
  try {
    info = await stat(path);
  } catch (cause) {
    throw fail('IO', openFailure(cause), path, cause);
  }
  refuseIrregular(info, path, what, fail);
  return { path, size: info.size };
}

/** Whether an IO failure's cause says the file does not exist (for callers with a NOT_FOUND code). */
export function isMissingFile(cause: unknown): boolean {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Why a stat or open failed, in plain words for the common cases. */
function openFailure(cause: unknown): string {
  if (isMissingFile(cause)) return 'no such file';
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return `cannot open: ${(cause as Error).message}`;
}

/**
 * Reads the whole regular file `file` ({@link openRegularFile}), refusing files larger than
 * `maxBytes` (TOO_LARGE) before reading them.
 */
export async function readRegularFile(file: FileLocation, what: string, fail: FileErrorFactory, maxBytes = Infinity): Promise<Buffer> {
  const { path, handle, size } = await openRegularFile(file, what, fail);
  try {
    if (size > maxBytes) throw fail('TOO_LARGE', `is ${size} bytes, more than the ${maxBytes}-byte limit for ${what}`, path);
    try {
      return await handle.readFile();
    } catch (cause) {
      throw fail('IO', `cannot read: ${(cause as Error).message}`, path, cause);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** What a path is, in words, when it is not a regular file. */
function describeIrregular(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO/pipe (reading it could wait forever for a writer)';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'a special file';
}

function refuseIrregular(info: Stats, path: string, what: string, fail: FileErrorFactory): void {
  if (!info.isFile()) throw fail('NOT_A_FILE', `is ${describeIrregular(info)}, not ${what}`, path);
}
