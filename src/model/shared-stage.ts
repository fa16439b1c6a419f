/**
 * A shared stage: two tensor-parallel ranks on one host that each run the
 * whole stage (every head, the embedding, norms, RoPE, attention over a KV
 * cache of every head) and split only the matmuls, row by row, as they
 * compute (native/src/comm/row-sharing.cc). A fixed split makes the faster
 * core wait for the slower one at every collective, and on a virtual
 * machine the cores' speeds drift by tens of per cent; here the faster one
 * takes more rows. Each rank holds, of every matrix, its half of the rows
 * plus an overlap (shard-spec.ts heldRows), which bounds how far the split
 * can move. Every row is one rank's whole canonical sum and everything else
 * is computed alike on both, so the outputs have the bits of one process.
 */
import type { Backend, Weight } from '../backend/backend.js';
import type { DType } from '../core/dtype.js';

/** A projection whose rows the ranks of a group share (one implementation: the native shared-memory group). */
export interface RowSharing {
  /**
   * x [numTokens, K] → out [numTokens, fullRows]: x·Wᵀ with [weight], or
   * silu(x·gateᵀ) · (x·upᵀ) with [gate, up]; each weight holds rows
   * [heldBegin, heldBegin + its rows) of the projection. Every rank gets every row.
   */
  share(weights: readonly Weight[], x: Float32Array, numTokens: number, heldBegin: number, fullRows: number, out: Float32Array): Float32Array;
  /**
   * Several projections of x (q, k, v) shared as one concatenation of their
   * rows, in one round: outs[i] [numTokens, rows of weights[i]]. What this
   * rank holds of them must be one run of the concatenation (sharedSpecs).
   */
  shareConcatenated(weights: readonly SharedWeight[], x: Float32Array, numTokens: number, outs: Float32Array[]): Float32Array[];
}

/** A matrix of a shared stage: its full shape, and the rows [heldBegin, heldBegin + held rows) this rank holds. */
export interface SharedWeight extends Weight {
  readonly held: Weight;
  readonly heldBegin: number;
}

export function sharedWeight(held: Weight, heldBegin: number, shape: readonly number[]): SharedWeight {
  const dtype: DType = held.dtype;
  return Object.freeze({ dtype, shape: [...shape], held, heldBegin });
}

export function isSharedWeight(weight: Weight): weight is SharedWeight {
  return (weight as Partial<SharedWeight>).held !== undefined;
}

/** One shared matmul: every rank gets x·Wᵀ [numTokens, rows of W] (held rows or none: as a concatenation of one). */
export function shareMatmul(rows: RowSharing, x: Float32Array, weight: SharedWeight, numTokens: number, out?: Float32Array): Float32Array {
  const fullRows = weight.shape[0]!;
  const target = out ?? new Float32Array(numTokens * fullRows);
  if (weight.held.shape[0] === 0) return rows.shareConcatenated([weight], x, numTokens, [target])[0]!;
  return rows.share([weight.held], x, numTokens, weight.heldBegin, fullRows, target);
}

/** `backend` with matmuls of shared weights shared across the ranks; every other op (and weight) as before. */
export function sharingBackend(backend: Backend, rows: RowSharing): Backend {
  const matmul = (x: Float32Array, weight: Weight, numTokens: number, out?: Float32Array): Float32Array =>
    isSharedWeight(weight) ? shareMatmul(rows, x, weight, numTokens, out) : backend.matmul(x, weight, numTokens, out);
  const matmulMany = (x: Float32Array, weights: readonly Weight[], numTokens: number, outs?: readonly Float32Array[]): Float32Array[] => {
    if (!weights.some(isSharedWeight)) return backend.matmulMany(x, weights, numTokens, outs);
    if (!weights.every(isSharedWeight)) return weights.map((weight, i) => matmul(x, weight, numTokens, outs?.[i]));
    const targets = weights.map((weight, i) => outs?.[i] ?? new Float32Array(numTokens * weight.shape[0]!));
    return rows.shareConcatenated(weights, x, numTokens, targets);
  };
  return new Proxy(backend, {
    get(target, key, receiver) {
      if (key === 'matmul') return matmul;
      if (key === 'matmulMany') return matmulMany;
      return Reflect.get(target, key, receiver);
    },
  });
}
