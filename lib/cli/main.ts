#!/usr/bin/env node
/**
 * The `paligemma` command. Each subcommand lives in its own module under lib/cli/ and registers
 * itself in `commands` below.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import type { Command } from './command.js';
import { EXIT, reportError } from './errors.js';

export { EXIT };

const commands: Record<string, () => Promise<Command>> = {
  describe: async () => (await import('./tasks.js')).describe,
  caption: async () => (await import('./tasks.js')).caption,
  ocr: async () => (await import('./tasks.js')).ocr,
  answer: async () => (await import('./tasks.js')).answer,
  detect: async () => (await import('./tasks.js')).detect,
  segment: async () => (await import('./tasks.js')).segment,
  info: async () => (await import('./info.js')).default,
  pull: async () => (await import('./pull.js')).default,
  convert: async () => (await import('./convert.js')).default,
  quantize: async () => (await import('./quantize.js')).default,
  bench: async () => (await import('./bench.js')).default,
  features: async () => (await import('./features.js')).default,
  serve: async () => (await import('./serve.js')).default,
  worker: async () => (await import('./worker.js')).default,
};

function version(): string {
  const pkgPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../package.json');
  return (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
}

async function help(): Promise<string> {
  const lines = ['Usage: paligemma <command> [options]', '', 'Commands:'];
  for (const [name, load] of Object.entries(commands)) {
    const command = await load();
    if (!command.hidden) lines.push(`  ${name.padEnd(10)} ${command.summary}`);
  }
  lines.push('', 'Run `paligemma <command> --help` (or `paligemma help <command>`) for a command\'s options.');
  return lines.join('\n');
}

/** Runs the CLI on `argv` (the arguments after the script) and returns the exit code (see EXIT). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' && rest.length > 0) return main([rest[0]!, '--help']);
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await help());
    return name ? EXIT.OK : EXIT.USAGE;
  }
  if (name === '--version' || name === '-v') {
    console.log(version());
    return EXIT.OK;
  }
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!load) {
    console.error(`paligemma: unknown command '${name}'\n\n${await help()}`);
    return EXIT.USAGE;
  }
  let command: Command | undefined;
  try {
    command = await load();
    const options = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
    if (options.includes('--help') || options.includes('-h')) {
      console.log(`${command.summary}\n\nUsage: ${command.usage}`);
      return EXIT.OK;
    }
    return await command.run(rest);
  } catch (err) {
    return reportError(name, err, command?.usage);
  }
}

const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly || process.argv[1]?.endsWith('/paligemma')) {
  // The reader of our output went away (`paligemma info big.gguf | head`): stop quietly, as Unix tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(EXIT.OK);
  });
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
