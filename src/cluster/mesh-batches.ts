/**
 * An engine batch as mesh steps. One step over every sequence keeps each
 * matrix multiply (and each message between ranks) batched; with pipeline
 * stages the sequences are split into one micro-batch per stage, all in
 * flight at once, so stage 0 computes one group while stage 1 computes
 * another (the coordinator answers steps in order).
 */
import type { Batch, BatchSegment } from '../model/batch.js';
import type { MeshCoordinator } from './coordinator.js';
import type { StepRequest } from './rank-runner.js';

/** Logits of the batch rows its segments ask for, in segment order: [rows, vocabSize]. */
export async function forwardOnMesh(
  coordinator: MeshCoordinator,
  batch: Batch,
  requestOf: (segment: BatchSegment, ids: Int32Array) => StepRequest,
): Promise<Float32Array> {
  const requests = batch.segments.map((segment) => requestOf(segment, batch.ids.subarray(segment.start, segment.start + segment.positions.length)));
  const groups = Math.min(coordinator.stages, requests.length);
  if (groups <= 1) return coordinator.stepBatch(requests);
  const parts = await Promise.all(
    Array.from({ length: groups }, (_, g) =>
      coordinator.stepBatch(requests.slice(Math.floor((g * requests.length) / groups), Math.floor(((g + 1) * requests.length) / groups))),
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
