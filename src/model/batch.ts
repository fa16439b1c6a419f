/**
 * A forward pass over several sequences at once: their tokens are laid end to
 * end, matrix multiplies run over all of them, attention runs per sequence.
 */
import type { KvPool } from '../backend/backend.js';

/** Where one sequence's keys and values live. */
export interface SequenceKv {
  /** Per layer. */
  keys: readonly KvPool[];
  /** Per layer. */
  values: readonly KvPool[];
  blockTable: Int32Array;
}

/** Which rows of a segment produce logits. */
export type LogitRows = 'none' | 'last' | 'all';

export interface BatchSegment {
  kv: SequenceKv;
  /** First row of this segment in the batch. */
  start: number;
  /** [count] position of each token in its sequence. */
  positions: Int32Array;
  logits: LogitRows;
}

export interface Batch {
  /** [numTokens] */
  ids: Int32Array;
  segments: readonly BatchSegment[];
}

/** Rows of the batch that produce logits, in segment order. */
export function logitRowIndices(batch: Batch): number[] {
  const rows: number[] = [];
  for (const segment of batch.segments) {
    const count = segment.positions.length;
    if (segment.logits === 'all') for (let i = 0; i < count; i++) rows.push(segment.start + i);
    else if (segment.logits === 'last' && count > 0) rows.push(segment.start + count - 1);
  }
  return rows;
}

/** A batch of one sequence's tokens. */
export function singleSequenceBatch(ids: Int32Array, positions: Int32Array, kv: SequenceKv, logits: LogitRows): Batch {
  return { ids, segments: [{ kv, start: 0, positions, logits }] };
}
