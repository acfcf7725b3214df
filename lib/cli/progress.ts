/**
 * A one-line status display on stderr (`\r` + clear line), shown only when stderr is a terminal so
 * that logs and pipes stay clean. Updates are throttled: redrawing on every token would cost more
 * than the token.
 */

/** Minimum time between two redraws of the status line. */
const REDRAW_MS = 100;

/** The status line of one command run. */
export class StatusLine {
  readonly enabled: boolean;
  #shown = false;
  #lastDraw = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.enabled = stream.isTTY === true;
  }

  /** Replaces the status text; `force` draws even inside the throttle interval (phase changes, 100%). */
  update(text: string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    const width = this.stream.columns > 1 ? this.stream.columns - 1 : 0;
    this.stream.write(`\r\x1b[K${width > 0 && text.length > width ? text.slice(0, width - 1) + '…' : text}`);
    this.#shown = true;
  }

  /** Removes the status text, leaving the cursor at the start of an empty line. */
  clear(): void {
    if (!this.enabled || !this.#shown) return;
    this.stream.write('\r\x1b[K');
    this.#shown = false;
  }

  /** Writes a lasting line (a summary) in place of the status text. */
  note(text: string): void {
    if (!this.enabled) return;
    this.clear();
    this.stream.write(`${text}\n`);
  }
}

/** A bar of `width` cells, `fraction` (0..1) of them filled: `[██████░░░░]`. */
export function progressBar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
}

/** Bytes for people: `5.99 GB`, `812 MB`, `4.0 KB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

/** Milliseconds for people: `850 ms`, `1.25 s`. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
