/**
 * Element types of the paged KV cache. `f16` keeps IEEE half bits (rounded
 * to nearest even on write, widened exactly on read): half the memory of
 * `f32`, so twice the blocks fit a budget, and what llama.cpp keeps by default.
 */
import { TesseraError } from './errors.js';

export type KvDtype = 'f32' | 'f16';

export const KV_DTYPES: readonly KvDtype[] = ['f32', 'f16'];

export const DEFAULT_KV_DTYPE: KvDtype = 'f32';

/** Bytes of one cached element. */
export function kvDtypeBytes(dtype: KvDtype): number {
  return dtype === 'f16' ? 2 : 4;
}

/** A KV dtype from user input (a flag or an option); `what` names it in the error. */
export function parseKvDtype(value: unknown, what = '--kv-cache-dtype'): KvDtype {
  if (value === 'f32' || value === 'f16') return value;
  throw new TesseraError(
    'TESSERA_ERR_INVALID_ARGUMENT',
    `${what} must be one of ${KV_DTYPES.join(', ')}, got ${JSON.stringify(value)}`,
  );
}
