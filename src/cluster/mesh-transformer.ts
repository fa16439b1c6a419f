/**
 * A Transformer whose forward pass runs on the ranks of a mesh: the engine
 * keeps its step loop, sampler and stop logic, and each forward becomes one
 * step of the coordinator. The engine's own KV blocks go unused (the ranks
 * keep theirs); a sequence is known to the ranks by the identity of its
 * SequenceKv.
 */
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import type { ModelConfig } from '../core/model-config.js';
import type { Batch, SequenceKv } from '../model/batch.js';
import { ABSENT } from '../model/shard-weights.js';
import { Transformer } from '../model/transformer.js';
import type { MeshCoordinator } from './coordinator.js';
import { forwardOnMesh } from './mesh-batches.js';

export class MeshTransformer extends Transformer {
  private readonly sequenceIds = new WeakMap<SequenceKv, number>();
  private nextSequence = 1;

  constructor(
    config: ModelConfig,
    readonly coordinator: MeshCoordinator,
  ) {
    // No weights here: every layer runs on the ranks.
    super(config, { tokenEmbedding: ABSENT, layers: [], outputNorm: ABSENT, output: ABSENT }, new ReferenceBackend());
  }

  /** Logits of the batch rows its segments ask for, in segment order: [rows, vocabSize]. */
  override async forwardBatch(batch: Batch): Promise<Float32Array> {
    return forwardOnMesh(this.coordinator, batch, (segment, ids) => ({
      sequence: this.sequenceOf(segment.kv),
      capacity: segment.kv.blockTable.length * (segment.kv.keys[0]?.blockSize ?? 0),
      ids,
      positions: segment.positions,
      rows: segment.logits,
    }));
  }

  private sequenceOf(kv: SequenceKv): number {
    let id = this.sequenceIds.get(kv);
    if (id === undefined) {
      id = this.nextSequence++;
      this.sequenceIds.set(kv, id);
    }
    return id;
  }
}
