/**
 * The engine core's model on a mesh of worker processes (tensor/pipeline
 * parallel ranks). The ranks keep each sequence's KV themselves, under a
 * number this runner gives the sequence's (lifelong) SequenceKv, sized once
 * for the whole sequence — so the core runs with prefix caching off, and
 * tells the runner each sequence's capacity and when it ends.
 */
import { TesseraError } from '../core/errors.js';
import type { Batch, SequenceKv } from '../model/batch.js';
import type { MeshCoordinator } from '../cluster/coordinator.js';
import { forwardOnMesh } from '../cluster/mesh-batches.js';
import type { ModelRunner } from '../engine/engine-core.js';

export class MeshRunner implements ModelRunner {
  private readonly ids = new WeakMap<SequenceKv, number>();
  private nextId = 1;
  /** Tokens a sequence may grow to; set by the engine core. */
  capacityOf: (kv: SequenceKv) => number = () => {
    throw new TesseraError('TESSERA_ERR_INTERNAL', 'MeshRunner.capacityOf was not set');
  };

  constructor(readonly coordinator: MeshCoordinator) {}

  /** Logits [rows, vocabSize]: the batch as mesh steps of several sequences each (mesh-batches.ts). */
  async forwardBatch(batch: Batch): Promise<Float32Array> {
    return forwardOnMesh(this.coordinator, batch, (segment, ids) => ({
      sequence: this.idOf(segment.kv),
      capacity: this.capacityOf(segment.kv),
      ids,
      positions: segment.positions,
      rows: segment.logits,
    }));
  }

  release(kv: SequenceKv): void {
    const id = this.ids.get(kv);
    if (id === undefined) return;
    this.ids.delete(kv);
    void this.coordinator.release(id).catch(() => undefined);
  }

  private idOf(kv: SequenceKv): number {
    let id = this.ids.get(kv);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(kv, id);
    }
    return id;
  }
}
