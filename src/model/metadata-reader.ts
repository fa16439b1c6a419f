/**
 * Typed reads of loosely typed model metadata (GGUF key/values or a parsed
 * config.json), each failing with a coded error that names the key.
 */
import { TesseraError } from '../core/errors.js';

export type MetadataLookup = (key: string) => unknown;

export class MetadataReader {
  constructor(
    private readonly lookup: MetadataLookup,
    private readonly source: string,
  ) {}

  has(key: string): boolean {
    return this.lookup(key) !== undefined && this.lookup(key) !== null;
  }

  number(key: string, fallback?: number): number {
    const value = this.lookup(key);
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      throw this.missing(key);
    }
    if (typeof value === 'number') return value;
    if (typeof value === 'bigint') return Number(value);
    throw this.wrongType(key, 'a number', value);
  }

  optionalNumber(key: string): number | undefined {
    return this.has(key) ? this.number(key) : undefined;
  }

  string(key: string, fallback?: string): string {
    const value = this.lookup(key);
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      throw this.missing(key);
    }
    if (typeof value === 'string') return value;
    throw this.wrongType(key, 'a string', value);
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.lookup(key);
    if (value === undefined || value === null) return fallback;
    if (typeof value === 'boolean') return value;
    throw this.wrongType(key, 'true or false', value);
  }

  /** A number or a list of numbers (config.json's eos_token_id may be either). */
  numberList(key: string): number[] {
    const value = this.lookup(key);
    if (value === undefined || value === null) return [];
    const items = Array.isArray(value) ? value : [value];
    return items.map((item) => {
      if (typeof item === 'number') return item;
      if (typeof item === 'bigint') return Number(item);
      throw this.wrongType(key, 'a number or a list of numbers', value);
    });
  }

  private missing(key: string): TesseraError {
    return new TesseraError('TESSERA_ERR_BAD_CONFIG', `${this.source} lacks "${key}"; the model file is incomplete or of an unsupported kind`);
  }

  private wrongType(key: string, expected: string, value: unknown): TesseraError {
    return new TesseraError(
      'TESSERA_ERR_BAD_CONFIG',
      `${this.source} has "${key}" = ${JSON.stringify(String(value)).slice(0, 60)}, expected ${expected}`,
    );
  }
}
