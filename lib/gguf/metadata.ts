/**
 * Typed access to GGUF metadata. Each getter throws a {@link GGUFError} naming the key (MISSING_KEY or
 * WRONG_TYPE); each `getOptional…` variant returns undefined for an absent key but still rejects a present
 * key of the wrong type, since that means the file is not what the caller thinks it is.
 */
import { GGUFError } from './errors.js';
import type { GGUFArrayValue, GGUFItemType, GGUFValue } from './types.js';

/** Anything with metadata: a {@link GGUFFile}, or metadata alone (`path` only improves error messages). */
export interface GGUFMetadataSource {
  metadata: ReadonlyMap<string, GGUFValue>;
  path?: string;
}

/** The JS type of an array's items for each GGUF item type, e.g. `Float32Array` for 'f32'. */
export type GGUFArrayOf<T extends GGUFItemType> = { [A in GGUFArrayValue as A['itemType']]: A['value'] }[T];

const INTEGER_TYPES = new Set(['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'u64', 'i64']);

/** The raw value of `key`; throws MISSING_KEY when absent. */
export function getValue(source: GGUFMetadataSource, key: string): GGUFValue {
  const value = source.metadata.get(key);
  if (value === undefined) throw new GGUFError('MISSING_KEY', `metadata key '${key}' is missing`, source.path);
  return value;
}

/** A string value. */
export function getString(source: GGUFMetadataSource, key: string): string {
  const value = getValue(source, key);
  if (value.type !== 'string') throw wrongType(source, key, value, 'a string');
  return value.value;
}

/** A bool value. */
export function getBool(source: GGUFMetadataSource, key: string): boolean {
  const value = getValue(source, key);
  if (value.type !== 'bool') throw wrongType(source, key, value, 'a bool');
  return value.value;
}

/**
 * Any numeric value (integer or float) as a number. A u64/i64 is accepted when it is exactly representable
 * (|v| ≤ 2^53 - 1); converters disagree on which integer width they write for counts.
 */
export function getNumber(source: GGUFMetadataSource, key: string): number {
  const value = getValue(source, key);
  switch (value.type) {
    case 'u64':
    case 'i64':
      if (value.value > BigInt(Number.MAX_SAFE_INTEGER) || value.value < -BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new GGUFError('WRONG_TYPE', `metadata key '${key}' = ${value.value} does not fit in a JS number`, source.path);
      }
      return Number(value.value);
    case 'bool':
    case 'string':
    case 'array':
      throw wrongType(source, key, value, 'a number');
    default:
      return value.value;
  }
}

/** A value stored with an integer type (u8..i64), as a number; floats are rejected. */
export function getInteger(source: GGUFMetadataSource, key: string): number {
  const value = getValue(source, key);
  if (!INTEGER_TYPES.has(value.type)) throw wrongType(source, key, value, 'an integer');
  return getNumber(source, key);
}

/** A u64/i64 value as a bigint, or any other integer type widened to one. */
export function getBigInt(source: GGUFMetadataSource, key: string): bigint {
  const value = getValue(source, key);
  if (value.type === 'u64' || value.type === 'i64') return value.value;
  if (!INTEGER_TYPES.has(value.type)) throw wrongType(source, key, value, 'an integer');
  return BigInt(value.value as number);
}

/**
 * An array whose items have `itemType`, e.g. `getArray(gguf, 'tokenizer.ggml.scores', 'f32')` is a
 * Float32Array and `getArray(gguf, 'tokenizer.ggml.tokens', 'string')` a string[].
 */
export function getArray<T extends GGUFItemType>(source: GGUFMetadataSource, key: string, itemType: T): GGUFArrayOf<T> {
  const value = getValue(source, key);
  if (value.type !== 'array' || value.itemType !== itemType) throw wrongType(source, key, value, `an array of ${itemType}`);
  return value.value as GGUFArrayOf<T>;
}

/** Like {@link getString}, but undefined when the key is absent. */
export function getOptionalString(source: GGUFMetadataSource, key: string): string | undefined {
  return source.metadata.has(key) ? getString(source, key) : undefined;
}

/** Like {@link getBool}, but undefined when the key is absent. */
export function getOptionalBool(source: GGUFMetadataSource, key: string): boolean | undefined {
  return source.metadata.has(key) ? getBool(source, key) : undefined;
}

/** Like {@link getNumber}, but undefined when the key is absent. */
export function getOptionalNumber(source: GGUFMetadataSource, key: string): number | undefined {
  return source.metadata.has(key) ? getNumber(source, key) : undefined;
}

/** Like {@link getInteger}, but undefined when the key is absent. */
export function getOptionalInteger(source: GGUFMetadataSource, key: string): number | undefined {
  return source.metadata.has(key) ? getInteger(source, key) : undefined;
}

/** Like {@link getArray}, but undefined when the key is absent. */
export function getOptionalArray<T extends GGUFItemType>(
  source: GGUFMetadataSource,
  key: string,
  itemType: T,
): GGUFArrayOf<T> | undefined {
  if (!source.metadata.has(key)) return undefined;
  return getArray(source, key, itemType);
}

/** Names a value's type for messages: `u32`, `string`, `array of f32`. */
export function describeValueType(value: GGUFValue): string {
  return value.type === 'array' ? `array of ${value.itemType}` : value.type;
}

function wrongType(source: GGUFMetadataSource, key: string, value: GGUFValue, expected: string): GGUFError {
  return new GGUFError('WRONG_TYPE', `metadata key '${key}' should be ${expected} but is ${describeValueType(value)}`, source.path);
}
