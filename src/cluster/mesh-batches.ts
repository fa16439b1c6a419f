/**
 * An engine batch as mesh steps. One step over every sequence keeps each
 * matrix multiply (and each message between ranks) batched; with pipeline
 * stages the sequences are split into one micro-batch per stage, all in
 * flight at once, so stage 0 computes one group while stage 1 computes
 * another (the coordinator answers steps in order). Each sequence goes by
 * its block table in the driver's KV pool, which the ranks mirror.
 */
import type { KvPool } from '../backend/backend.js';
import { SegmentError, TesseraError } from '../core/errors.js';
import type { Batch } from '../model/batch.js';
import type { MeshCoordinator } from './coordinator.js';
import type { KvLayout, StepRequest } from './rank-runner.js';

/** Logits of the batch rows its segments ask for, in segment order: [rows, vocabSize]. `generation`: the plan it must run on. */
export async function forwardOnMesh(coordinator: MeshCoordinator, batch: Batch, generation?: number): Promise<Float32Array> {
  if (batch.segments.length === 0) return new Float32Array(0);
  return stepMicroBatches(coordinator, driverPool(batch), stepRequests(batch), generation);
}

/** The batch's segments as step requests. */
export function stepRequests(batch: Batch): StepRequest[] {
  return batch.segments.map((segment) => ({
    blockTable: segment.kv.blockTable,
    ids: batch.ids.subarray(segment.start, segment.start + segment.positions.length),
    positions: segment.positions,
    rows: segment.logits,
  }));
}

/**
 * The requests as one micro-batch per pipeline stage (one step without
 * stages), all in flight; logits in request order. A refused segment's
 * SegmentError names its index among all the requests.
 */
export async function stepMicroBatches(coordinator: MeshCoordinator, pool: KvLayout, requests: readonly StepRequest[], generation?: number): Promise<Float32Array> {
  const groups = Math.min(coordinator.stages, requests.length);
  if (groups <= 1) return coordinator.stepBatch(pool, requests, generation);
  const starts = Array.from({ length: groups + 1 }, (_, g) => Math.floor((g * requests.length) / groups));
  const parts = await Promise.all(
    Array.from({ length: groups }, (_, g) =>
      coordinator.stepBatch(pool, requests.slice(starts[g], starts[g + 1]), generation).catch((error: unknown) => {
        throw error instanceof SegmentError ? new SegmentError(error.code, error.message, error.segment + starts[g]) : error;
      }),
    ),
  );
  const out = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** The layout of the one driver pool every segment's block table points into. */
export function driverPool(batch: Batch): KvLayout {
  const keys = batch.segments[0].kv.keys[0];
  if (batch.segments.some((segment) => segment.kv.keys[0] !== keys)) {
    throw new TesseraError('TESSERA_ERR_INTERNAL', 'a mesh batch mixes sequences of several KV pools; the ranks mirror only one');
  }
  return { numBlocks: poolBlocks(keys), blockSize: keys.blockSize };
}

/** Blocks of a pool: its data is [numBlocks, blockSize, numKvHeads, headDim]. */
function poolBlocks(pool: KvPool): number {
  return pool.data.length / (pool.blockSize * pool.numKvHeads * pool.headDim);
}
