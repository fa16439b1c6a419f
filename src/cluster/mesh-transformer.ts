/**
 * A Transformer whose forward pass runs on the ranks of a mesh: the engine
 * keeps its step loop, sampler and stop logic, and each forward becomes one
 * step of the coordinator. The engine's KV blocks hold nothing here: the
 * ranks keep the keys and values, in pools that mirror the engine's, at the
 * same block ids.
 */
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import type { ModelConfig } from '../core/model-config.js';
import type { Batch } from '../model/batch.js';
import { ABSENT } from '../model/shard-weights.js';
import { Transformer } from '../model/transformer.js';
import type { MeshCoordinator } from './coordinator.js';
import { forwardOnMesh } from './mesh-batches.js';

export class MeshTransformer extends Transformer {
  constructor(
    config: ModelConfig,
    readonly coordinator: MeshCoordinator,
  ) {
    // No weights here: every layer runs on the ranks.
    super(config, { tokenEmbedding: ABSENT, layers: [], outputNorm: ABSENT, output: ABSENT }, new ReferenceBackend());
  }

  /** The ranks hold the KV: an engine core driving this keeps block accounting without pools. */
  readonly kvPoolLayers: readonly [number, number] = [0, 0];

  /** Logits of the batch rows its segments ask for, in segment order: [rows, vocabSize]. */
  override async forwardBatch(batch: Batch): Promise<Float32Array> {
    return forwardOnMesh(this.coordinator, batch);
  }
}
