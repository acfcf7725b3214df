/**
 * The error hierarchy: every error class the package exports extends PaliGemmaError, keeps its own
 * name and code, and isPaliGemmaError recognises them (also from another copy of the package).
 */
import { describe, expect, it } from 'vitest';

import * as api from '../lib/index.js';
import { PaliGemmaError, isPaliGemmaError } from '../lib/index.js';

/** (code, message) for every class but those with a fixed code, which take (message, …). */
type ErrorClass = new (a: string, b?: string) => PaliGemmaError<string>;
const exportedErrorClasses = Object.entries(api as Record<string, unknown>).filter(
  (entry): entry is [string, ErrorClass] => typeof entry[1] === 'function' && /^[A-Z]\w*Error$/.test(entry[0]),
);

/** Classes whose constructor takes the message first, and the code each gets by default. */
const FIXED_CODES: Record<string, string> = {
  SimdError: 'UNSUPPORTED_VARIANT', OptionError: 'UNKNOWN_OPTION', JobDataError: 'BAD_JOB', MissingDependencyError: 'MISSING_DEPENDENCY',
};

describe('error classes', () => {
  it('the package exports the expected error classes', () => {
    expect(exportedErrorClasses.map(([name]) => name).sort()).toEqual([
      'ConvertError', 'GGUFError', 'ImageError', 'JobDataError', 'MissingDependencyError', 'ModelFilesError', 'NativeAddonError',
      'NpzError', 'OllamaError', 'OptionError', 'PaliGemmaError', 'PullError', 'QuantizeError', 'SafetensorsError', 'SimdError',
      'TaskError', 'TokenizerError',
    ]);
  });

  it.each(exportedErrorClasses)('%s extends PaliGemmaError and keeps its name and code', (name, Class) => {
    expect(Class === PaliGemmaError || Class.prototype instanceof PaliGemmaError).toBe(true);
    const fixed = FIXED_CODES[name];
    const err = fixed ? new Class('msg') : new Class('SOME_CODE', 'msg');
    expect(err).toBeInstanceOf(Class);
    expect(err).toBeInstanceOf(PaliGemmaError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe(name);
    expect(err.code).toBe(fixed ?? 'SOME_CODE');
    expect(err.message).toBe('msg');
    expect(isPaliGemmaError(err)).toBe(true);
    expect(String(err.stack)).toContain(`${name}: msg`);
  });

  it('errors from real failures are PaliGemmaErrors with their own class and code', async () => {
    const gguf = await api.readGGUF('/nonexistent/model.gguf').catch((e: unknown) => e);
    expect(gguf).toBeInstanceOf(api.GGUFError);
    expect(gguf).toBeInstanceOf(PaliGemmaError);
    expect((gguf as api.GGUFError).code).toBe('IO');
    expect((gguf as api.GGUFError).path).toBe('/nonexistent/model.gguf');
    const task = (() => { try { api.detectPrompt([]); } catch (e) { return e; } })();
    expect(task).toBeInstanceOf(api.TaskError);
    expect(isPaliGemmaError(task)).toBe(true);
  });

  it('isPaliGemmaError is false for other values', () => {
    for (const v of [new Error('x'), new TypeError('x'), Object.assign(new Error('x'), { code: 'IO' }), null, undefined, 'IO', {}]) {
      expect(isPaliGemmaError(v)).toBe(false);
    }
  });

  it('isPaliGemmaError recognises an error from another copy of the package', async () => {
    const second = '../lib/errors.js?copy'; // a query string makes the test runner load a second instance
    const copy = (await import(second)) as typeof import('../lib/errors.js');
    expect(copy.PaliGemmaError).not.toBe(PaliGemmaError);
    const foreign = new copy.PaliGemmaError('DISPOSED', 'from the other copy');
    expect(foreign instanceof PaliGemmaError).toBe(false);
    expect(isPaliGemmaError(foreign)).toBe(true);
  });
});
