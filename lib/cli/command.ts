/** A subcommand: its one-line summary (for `paligemma --help`), its usage text, and how to run it. */
export interface Command {
  summary: string;
  /** The first line is the synopsis, shown again with usage errors. */
  usage: string;
  /** Returns the process exit code; throws UsageError for bad usage and typed errors for failures. */
  run(args: string[]): Promise<number>;
  /** Left out of `paligemma --help` (it still runs, and says why it cannot when it cannot). */
  readonly hidden?: boolean;
}
