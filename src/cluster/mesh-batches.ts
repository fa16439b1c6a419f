/**
 * An engine batch as mesh steps. One step over every sequence keeps each
 * matrix multiply (and each message between ranks) batched. With pipeline
 * stages an engine core usually keeps one group of sequences in flight per
 * stage (MeshTransformer.pipelineGroups), so each batch is one step; else
 * (one sequence, replay mode, TESSERA_PP_OVERLAP=0) the sequences are split
 * into one micro-batch per stage, all in flight at once, so stage 0
 * computes one group while stage 1 computes another (the coordinator
 * answers steps in order). Each sequence goes by
 * its block table in the driver's KV pool, which the ranks mirror.
 */
import type { KvPool } from '../backend/backend.js';
import { SegmentError, TesseraError } from '../core/errors.js';
import type { Batch } from '../model/batch.js';
import { kvLayoutOf } from '../engine/kv-cache.js';
import type { MeshCoordinator } from './coordinator.js';
import type { KvLayout, StepRequest } from './rank-runner.js';
import { joinRows, type PickedRows, type TokenPick } from '../engine/token-pick.js';

/**
 * The batch rows its segments ask for, in segment order: picked on the
 * reporting rank where `picks` names a segment's pick (an id), else logits.
 * `generation`: the plan it must run on. `split` false: one step, no
 * micro-batches (the engine core keeps groups of sequences in flight itself,
 * MeshTransformer.pipelineGroups).
 */
export async function forwardOnMesh(coordinator: MeshCoordinator, batch: Batch, generation?: number, picks: readonly (TokenPick | undefined)[] = [], split = true): Promise<PickedRows> {
  if (batch.segments.length === 0) return { ids: new Int32Array(0), logits: new Float32Array(0) };
  const requests = stepRequests(batch, picks);
  if (!split) return coordinator.stepRows(driverPool(batch), requests, generation);
  return stepMicroBatchRows(coordinator, driverPool(batch), requests, generation);
}

/** The batch's segments as step requests; picks[s] rides with segment s when it asks for its last row. */
export function stepRequests(batch: Batch, picks: readonly (TokenPick | undefined)[] = []): StepRequest[] {
  return batch.segments.map((segment, s) => {
    const pick = segment.logits === 'last' ? picks[s] : undefined;
    return {
      blockTable: segment.kv.blockTable,
      ids: batch.ids.subarray(segment.start, segment.start + segment.positions.length),
      positions: segment.positions,
      rows: segment.logits,
      ...(pick ? { pick } : {}),
    };
  });
}

/**
 * The requests as one micro-batch per pipeline stage (one step without
 * stages), all in flight; logits in request order. A refused segment's
 * SegmentError names its index among all the requests.
 */
export async function stepMicroBatches(coordinator: MeshCoordinator, pool: KvLayout, requests: readonly StepRequest[], generation?: number): Promise<Float32Array> {
  return (await stepMicroBatchRows(coordinator, pool, requests, generation)).logits;
}

/** stepMicroBatches with the requests' picks: ids for picked rows, logits for the others, in request order. */
export async function stepMicroBatchRows(coordinator: MeshCoordinator, pool: KvLayout, requests: readonly StepRequest[], generation?: number): Promise<PickedRows> {
  const groups = Math.min(coordinator.stages * microBatchesPerStage(coordinator.stages), requests.length);
  if (groups <= 1) return coordinator.stepRows(pool, requests, generation);
  const starts = Array.from({ length: groups + 1 }, (_, g) => Math.floor((g * requests.length) / groups));
  const parts = await Promise.all(
    Array.from({ length: groups }, (_, g) =>
      coordinator.stepRows(pool, requests.slice(starts[g], starts[g + 1]), generation).catch((error: unknown) => {
        throw error instanceof SegmentError ? new SegmentError(error.code, error.message, error.segment + starts[g]) : error;
      }),
    ),
  );
  return joinRows(parts);
}

/**
 * Micro-batches per stage (TESSERA_PP_MICROBATCHES, default 1). More shrink
 * the pipeline's bubble, (pp - 1) / (m + pp - 1) of a step, but every
 * micro-batch reads the stage's weights again.
 */
function microBatchesPerStage(stages: number): number {
  const value = Number(process.env.TESSERA_PP_MICROBATCHES);
  return stages > 1 && Number.isInteger(value) && value > 0 ? value : 1;
}

/** The layout of the one driver pool every segment's block table points into (a KvCache, which holds no pools on a driver). */
export function driverPool(batch: Batch): KvLayout {
  const keys = batch.segments[0].kv.keys;
  if (batch.segments.some((segment) => segment.kv.keys !== keys)) {
    throw new TesseraError('TESSERA_ERR_INTERNAL', 'a mesh batch mixes sequences of several KV pools; the ranks mirror only one');
  }
  const layout = kvLayoutOf(keys) ?? layoutOfPool(keys[0]);
  return { numBlocks: layout.numBlocks, blockSize: layout.blockSize };
}

/** The layout of a pool list not made by a KvCache: its data is [numBlocks, blockSize, numKvHeads, headDim]. */
function layoutOfPool(pool: KvPool | undefined): KvLayout {
  if (!pool) throw new TesseraError('TESSERA_ERR_INTERNAL', 'a mesh batch names a KV pool list with no layout');
  return { numBlocks: pool.data.length / (pool.blockSize * pool.numKvHeads * pool.headDim), blockSize: pool.blockSize };
}
