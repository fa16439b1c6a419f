/**
 * Typed access to GGUF metadata. A missing or mistyped key is a bad model
 * file, not a programming error, so these throw coded errors naming the key.
 */
import { TesseraError } from '../core/errors.js';
import type { GgufValue } from './gguf-types.js';

export type GgufMetadata = ReadonlyMap<string, GgufValue>;

function describe(value: GgufValue): string {
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function wrongType(key: string, want: string, value: GgufValue): TesseraError {
  return new TesseraError(
    'TESSERA_ERR_BAD_FORMAT',
    `GGUF metadata key ${key} should be ${want} but is ${describe(value)}; the file was written by an incompatible converter`,
  );
}

function missing(key: string): TesseraError {
  return new TesseraError('TESSERA_ERR_BAD_FORMAT', `GGUF metadata key ${key} is missing; the file was written by an incompatible converter or is not a model of the expected kind`);
}

export function getOptionalString(metadata: GgufMetadata, key: string): string | undefined {
  const value = metadata.get(key);
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw wrongType(key, 'a string', value);
  return value;
}

/** A numeric value; 64-bit integers that are not safe JS integers are refused. */
export function getOptionalNumber(metadata: GgufMetadata, key: string): number | undefined {
  const value = metadata.get(key);
  if (value === undefined) return undefined;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') {
    throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `GGUF metadata key ${key} is ${value}, too large to use as a number; the file is corrupt`);
  }
  throw wrongType(key, 'a number', value);
}

export function getOptionalBoolean(metadata: GgufMetadata, key: string): boolean | undefined {
  const value = metadata.get(key);
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw wrongType(key, 'a boolean', value);
  return value;
}

export function getOptionalArray(metadata: GgufMetadata, key: string): GgufValue[] | undefined {
  const value = metadata.get(key);
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw wrongType(key, 'an array', value);
  return value;
}

export function getString(metadata: GgufMetadata, key: string): string {
  const value = getOptionalString(metadata, key);
  if (value === undefined) throw missing(key);
  return value;
}

export function getNumber(metadata: GgufMetadata, key: string): number {
  const value = getOptionalNumber(metadata, key);
  if (value === undefined) throw missing(key);
  return value;
}

export function getBoolean(metadata: GgufMetadata, key: string): boolean {
  const value = getOptionalBoolean(metadata, key);
  if (value === undefined) throw missing(key);
  return value;
}

export function getArray(metadata: GgufMetadata, key: string): GgufValue[] {
  const value = getOptionalArray(metadata, key);
  if (value === undefined) throw missing(key);
  return value;
}
