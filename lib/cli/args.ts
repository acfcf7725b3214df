/**
 * The option parser shared by every `paligemma` command: `--name value`, `--name=value`, boolean
 * flags, short aliases (`-q value`), `--` to end options. Values are checked for type and range
 * here, so a command only ever sees well-formed options; anything wrong is a {@link UsageError}
 * that names the option (exit code 2).
 */
import { CLI_FOREIGN_NAMES, describeSuggestion, suggestName } from '../options.js';

/** One option a command accepts. */
export interface OptionSpec {
  /** `boolean` options are flags and take no value; the others take exactly one. */
  type: 'string' | 'boolean' | 'integer' | 'number';
  /** A one-letter alias, e.g. `q` for `-q`. */
  short?: string;
  /** The values a string option may take. */
  choices?: readonly string[];
  /** Inclusive bounds of a numeric option. */
  min?: number;
  max?: number;
  /** For the help text: what the value stands for, e.g. `FILE`. */
  value?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** The parsed value type of an option spec. */
type ValueOf<T extends OptionSpec> = T['type'] extends 'boolean' ? boolean : T['type'] extends 'string' ? string : number;

/** Parsed options, by long name; absent options are undefined. */
export type Options<S extends OptionSpecs> = { [K in keyof S]?: ValueOf<S[K]> };

/** Bad command-line usage: the message names the option or argument at fault. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Parses `args` against `specs`. Arguments that do not start with `-` (and everything after `--`,
 * and a lone `-`) are positional. Repeating an option keeps the last value, as most tools do.
 */
export function parseArgs<S extends OptionSpecs>(args: readonly string[], specs: S): { positional: string[]; options: Options<S> } {
  const positional: string[] = [];
  const options: Record<string, string | number | boolean> = {};
  const byShort = new Map(Object.entries(specs).filter(([, s]) => s.short).map(([name, s]) => [s.short!, name]));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const long = arg.startsWith('--');
    const eq = arg.indexOf('=');
    const key = long ? arg.slice(2, eq < 0 ? undefined : eq) : arg.slice(1, eq < 0 ? undefined : eq);
    const name = long ? key : byShort.get(key);
    const spec = name !== undefined && Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (name === undefined || spec === undefined) throw unknownOption(arg.slice(0, eq < 0 ? undefined : eq), key, specs);
    if (spec.type === 'boolean') {
      if (eq >= 0) throw new UsageError(`--${name} is a flag and takes no value`);
      options[name] = true;
      continue;
    }
    const raw = eq >= 0 ? arg.slice(eq + 1) : args[++i];
    if (raw === undefined || raw === '') throw new UsageError(`--${name} needs a value${spec.value ? ` (${spec.value})` : ''}`);
    options[name] = parseValue(name, raw, spec);
  }
  return { positional, options: options as Options<S> };
}

/** "unknown option --mmproj (--mmproj is llama.cpp's name: use --projector)", or a near-miss's "did you mean". */
function unknownOption(written: string, key: string, specs: OptionSpecs): UsageError {
  const suggestion = suggestName(key, Object.keys(specs), CLI_FOREIGN_NAMES);
  return new UsageError(`unknown option ${written}${describeSuggestion(written, suggestion, (name) => (name === written ? name : `--${name}`))}`);
}

function parseValue(name: string, raw: string, spec: OptionSpec): string | number {
  if (spec.type === 'string') {
    if (spec.choices && !spec.choices.includes(raw)) throw new UsageError(`--${name} must be one of ${spec.choices.join(', ')}, got '${raw}'`);
    return raw;
  }
  const n = Number(raw);
  const kind = spec.type === 'integer' ? 'an integer' : 'a number';
  if (raw.trim() === '' || !Number.isFinite(n) || (spec.type === 'integer' && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be ${kind}, got '${raw}'`);
  if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
    const range = spec.max === undefined ? `≥ ${spec.min}` : spec.min === undefined ? `≤ ${spec.max}` : `in ${spec.min}..${spec.max}`;
    throw new UsageError(`--${name} must be ${kind} ${range}, got ${raw}`);
  }
  return n;
}
