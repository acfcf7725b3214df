/**
 * `paligemma bench`: runs the benchmark suite (bench/run.ts, the script behind `npm run bench`) from
 * the package root, passing the arguments through. The suite ships with the source repository,
 * not with the published package, so its absence is reported rather than treated as a bug.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Command } from './command.js';
import { CliError } from './errors.js';

/** lib/cli/ (sources) and dist/cli/ (package) both sit two levels below the package root. */
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The suite's entry script, relative to the package root. */
export const BENCH_SCRIPT = 'bench/run.ts';

const bench: Command = {
  summary: 'Run the benchmark suite (bench/run.ts, needs the source repository)',
  // The installed package has no bench/ (package.json "files"): do not offer what cannot run.
  get hidden() {
    return !existsSync(path.join(packageRoot, BENCH_SCRIPT));
  },
  usage: [
    'paligemma bench [-- <suite arguments>]',
    '',
    `  Runs \`node --import tsx ${BENCH_SCRIPT}\` in the package root with the arguments given`,
    '  (put them after -- to pass --help and other options to the suite itself).',
    '  The suite and tsx come with a clone of the source repository (npm install there).',
    '',
    'Exit status: the suite\'s own.',
  ].join('\n'),
  async run(args) {
    const script = path.join(packageRoot, BENCH_SCRIPT);
    if (!existsSync(script)) {
      throw new CliError(
        `the benchmark suite is not installed here: there is no ${script}`,
        'the suite is part of the source repository, not of the npm package; run this from a clone of the repository that has bench/run.ts (after `npm install`)',
      );
    }
    const passed = args[0] === '--' ? args.slice(1) : args;
    const child = spawn(process.execPath, ['--import', 'tsx', BENCH_SCRIPT, ...passed], { cwd: packageRoot, stdio: 'inherit' });
    // Ctrl-C reaches the suite too (same process group); let it decide how to stop.
    const ignore = () => {};
    process.on('SIGINT', ignore);
    try {
      return await new Promise<number>((resolve, reject) => {
        child.once('error', (err) => reject(new CliError(`cannot start the benchmark suite: ${err.message}`)));
        child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)));
      });
    } finally {
      process.off('SIGINT', ignore);
    }
  },
};

export default bench;
