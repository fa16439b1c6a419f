/**
 * Runtime checks for values that come from a peer (a control message's
 * JSON): a schema is a function that returns the value, typed, or throws
 * TESSERA_ERR_PROTOCOL naming the path that is wrong. Schemas are written
 * against the TypeScript type they check (`object<T>({...})`), so the
 * compiler keeps the two in step. Objects are strict: a key the schema does
 * not name is refused, and the value returned is built afresh from the named
 * keys only (nothing a peer sent rides along unchecked, `__proto__` included).
 * Every number, string and array is bounded, so a well-formed but absurd
 * value (a block count of 2^53) is refused before anything is allocated for it.
 */
import { TesseraError } from './errors.js';

export type Schema<T> = (value: unknown, path: string) => T;

function refuse(path: string, what: string, value: unknown): never {
  const shown = typeof value === 'string' ? `a string of ${value.length} characters` : Array.isArray(value) ? `an array of ${value.length}` : value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value);
  throw new TesseraError('TESSERA_ERR_PROTOCOL', `${path} must be ${what}, not ${shown}`);
}

/** An integer in [min, max]. */
export function int(min: number, max: number): Schema<number> {
  return (value, path) => (Number.isInteger(value) && (value as number) >= min && (value as number) <= max ? (value as number) : refuse(path, `an integer in [${min}, ${max}]`, value));
}

/** A finite number in [min, max]. */
export function num(min: number, max: number): Schema<number> {
  return (value, path) => (typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max ? value : refuse(path, `a number in [${min}, ${max}]`, value));
}

export function str(maxLength: number, pattern?: RegExp): Schema<string> {
  return (value, path) => {
    if (typeof value !== 'string' || value.length > maxLength) return refuse(path, `a string of at most ${maxLength} characters`, value);
    if (pattern && !pattern.test(value)) return refuse(path, `a string matching ${pattern}`, value);
    return value;
  };
}

export const bool: Schema<boolean> = (value, path) => (typeof value === 'boolean' ? value : refuse(path, 'true or false', value));

/** One of the listed strings or numbers. */
export function oneOf<T extends string | number>(...values: readonly T[]): Schema<T> {
  return (value, path) => (values.includes(value as T) ? (value as T) : refuse(path, `one of ${values.join(', ')}`, value));
}

export function array<T>(item: Schema<T>, maxLength: number, minLength = 0): Schema<T[]> {
  return (value, path) => {
    if (!Array.isArray(value) || value.length > maxLength || value.length < minLength) return refuse(path, `an array of ${minLength} to ${maxLength} items`, value);
    return value.map((entry, index) => item(entry, `${path}[${index}]`));
  };
}

export function pair<A, B>(first: Schema<A>, second: Schema<B>): Schema<[A, B]> {
  return (value, path) => {
    if (!Array.isArray(value) || value.length !== 2) return refuse(path, 'a pair', value);
    return [first(value[0], `${path}[0]`), second(value[1], `${path}[1]`)];
  };
}

/** Absent (undefined) or as `schema` says. */
export function optional<T>(schema: Schema<T>): Schema<T | undefined> {
  return (value, path) => (value === undefined ? undefined : schema(value, path));
}

/** null or as `schema` says. */
export function nullable<T>(schema: Schema<T>): Schema<T | null> {
  return (value, path) => (value === null ? null : schema(value, path));
}

/** The checks of every property of T (optional ones with `optional`). */
export type Shape<T> = { [K in keyof T]-?: Schema<T[K]> };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An object of exactly the named keys. `extra: 'drop'` leaves out keys the
 * schema does not name instead of refusing them, for a peer of a newer
 * version that may add fields (what is returned still holds only checked ones).
 */
export function object<T>(shape: Shape<T>, extra: 'refuse' | 'drop' = 'refuse'): Schema<T> {
  const keys = Object.keys(shape) as (keyof T & string)[];
  return (value, path) => {
    if (!isPlainObject(value)) return refuse(path, 'an object', value);
    if (extra === 'refuse') for (const key of Object.keys(value)) if (!Object.hasOwn(shape, key)) refuse(`${path}.${key.slice(0, 64)}`, 'absent (an unknown field)', value[key]);
    const out: Partial<T> = {};
    for (const key of keys) {
      const checked = shape[key](value[key], `${path}.${key}`);
      if (checked !== undefined) out[key] = checked;
    }
    return out as T;
  };
}

/** String keys (at most `maxKeys`, each a short name) to values `item` checks. */
export function record<T>(item: Schema<T>, maxKeys: number): Schema<Record<string, T>> {
  return (value, path) => {
    if (!isPlainObject(value)) return refuse(path, 'an object', value);
    const keys = Object.keys(value);
    if (keys.length > maxKeys) return refuse(path, `an object of at most ${maxKeys} keys`, value);
    const out: Record<string, T> = Object.create(null) as Record<string, T>;
    for (const key of keys) out[str(256)(key, `${path} key`)] = item(value[key], `${path}.${key.slice(0, 64)}`);
    return out;
  };
}

/** Either schema, tried in order (for small unions of scalars). */
export function either<A, B>(first: Schema<A>, second: Schema<B>, what: string): Schema<A | B> {
  return (value, path) => {
    try {
      return first(value, path);
    } catch {
      try {
        return second(value, path);
      } catch {
        return refuse(path, what, value);
      }
    }
  };
}

/** A union told apart by its `type` field: one object schema per type. */
export function tagged<T extends { type: string }>(cases: { [K in T['type']]: Schema<Extract<T, { type: K }>> }): Schema<T> {
  const table = cases as Record<string, Schema<T>>;
  return (value, path) => {
    const type = isPlainObject(value) ? value.type : undefined;
    if (typeof type !== 'string' || !Object.hasOwn(table, type)) return refuse(`${path}.type`, `one of ${Object.keys(table).join(', ')}`, type);
    return table[type]!(value, path);
  };
}
