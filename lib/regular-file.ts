/**
 * Opening a path that must be a regular file, with the reason in plain words when it is not: a
 * directory, a FIFO (whose open would wait forever for a writer), a device. Minimal on purpose; a
 * shared helper for every file the package opens is planned (lib/files.ts) and should absorb this.
 */
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';

/** Why a path is not a readable regular file. */
export type FileProblem = 'NOT_FOUND' | 'NOT_A_FILE' | 'UNREADABLE' | 'TOO_LARGE';

/** A path that cannot be used as a file; `message` says why in plain words, without the path. */
export class RegularFileError extends Error {
  override name = 'RegularFileError';
  constructor(
    readonly code: FileProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What a non-regular file is, for people. */
function kindOf(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a named pipe (FIFO)';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function fromErrno(err: unknown): RegularFileError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new RegularFileError('NOT_FOUND', 'no such file', { cause: err });
  if (code === 'EACCES' || code === 'EPERM') return new RegularFileError('UNREADABLE', 'permission denied', { cause: err });
  if (code === 'EISDIR') return new RegularFileError('NOT_A_FILE', 'it is a directory, not a file', { cause: err });
  return new RegularFileError('UNREADABLE', (err as Error).message, { cause: err });
}

function checkRegular(info: Stats): void {
  if (!info.isFile()) throw new RegularFileError('NOT_A_FILE', `it is ${kindOf(info)}, not a file`);
}

/** Checks that `file` is an existing regular file (following symlinks) and returns its size. */
export async function regularFileSize(file: string): Promise<number> {
  let info: Stats;
  try {
    info = await stat(file);
  } catch (err) {
    throw fromErrno(err);
  }
  checkRegular(info);
  return info.size;
}

/** Reads a whole regular file of at most `maxBytes`; anything else is a {@link RegularFileError}. */
export async function readRegularFile(file: string, maxBytes: number): Promise<Buffer> {
  // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer; the
  // fstat below then refuses it. Regular files ignore the flag. (Windows has no FIFOs and no flag.)
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw fromErrno(err);
  }
  try {
    const info = await handle.stat();
    checkRegular(info);
    if (info.size > maxBytes) throw new RegularFileError('TOO_LARGE', `it has ${info.size} bytes, more than the limit of ${maxBytes}`);
    return await handle.readFile();
  } catch (err) {
    throw err instanceof RegularFileError ? err : fromErrno(err);
  } finally {
    await handle.close();
  }
}
