#!/usr/bin/env node
/**
 * The `paligemma` command. Each subcommand lives in its own module under lib/cli/ and registers
 * itself in `commands` below.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface Command {
  summary: string;
  usage: string;
  /** Returns the process exit code. */
  run(args: string[]): Promise<number>;
}

/** Exit codes a shell user can act on. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

const commands: Record<string, () => Promise<Command>> = {
  features: async () => (await import('./features.js')).default,
  convert: async () => (await import('./convert.js')).default,
};

function version(): string {
  const pkgPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../package.json');
  return (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
}

async function help(): Promise<string> {
  const lines = ['Usage: paligemma <command> [options]', '', 'Commands:'];
  for (const [name, load] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${(await load()).summary}`);
  lines.push('', 'Run `paligemma <command> --help` for a command\'s options.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await help());
    return name ? EXIT.OK : EXIT.USAGE;
  }
  if (name === '--version' || name === '-v') {
    console.log(version());
    return EXIT.OK;
  }
  const load = commands[name];
  if (!load) {
    console.error(`paligemma: unknown command '${name}'\n\n${await help()}`);
    return EXIT.USAGE;
  }
  try {
    const command = await load();
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(`${command.summary}\n\nUsage: ${command.usage}`);
      return EXIT.OK;
    }
    return await command.run(rest);
  } catch (err) {
    console.error(`paligemma ${name}: ${(err as Error).message}`);
    return EXIT.FAILURE;
  }
}

const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly || process.argv[1]?.endsWith('/paligemma')) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
