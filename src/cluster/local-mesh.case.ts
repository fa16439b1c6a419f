/**
 * A whole (tp, pp) mesh of rank runners inside one process (in-process
 * transport): the quick way for tests to check sharded arithmetic before
 * processes and sockets come in.
 */
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import { openModelFiles } from '../engine/model-files.js';
import { StageModel } from '../model/shard-stage.js';
import { loadStageWeights } from '../model/shard-weights.js';
import { CollectiveGroup } from '../parallel/collective-group.js';
import { Communicator } from '../parallel/collectives.js';
import { inProcessMesh } from '../parallel/in-process-transport.js';
import { meshSize, placeOf, stageLayerRanges, stageRanks, type MeshShape } from '../parallel/mesh.js';
import { RankRunner, type KvLayout, type StepRequest } from './rank-runner.js';
import type { KvDtype } from '../core/kv-dtype.js';

export interface LocalMesh {
  runners: RankRunner[];
  /** Bytes each rank read from the model file. */
  bytesRead: number[];
  step(layout: KvLayout, request: StepRequest): Promise<Float32Array>;
}

/** A KV pool of one block, and the block table of a sequence in it: room for a short prompt and its next tokens. */
export const ONE_BLOCK: KvLayout = { numBlocks: 1, blockSize: 16 };
export const FIRST_BLOCK = Int32Array.of(0);

export function localMesh(modelPath: string, shape: MeshShape, kvDtype: KvDtype = 'f32'): LocalMesh {
  const transports = inProcessMesh(meshSize(shape));
  const bytesRead: number[] = [];
  const runners = transports.map((transport) => {
    const files = openModelFiles(modelPath);
    try {
      const { stage, tpRank } = placeOf(transport.rank, shape);
      const [startLayer, endLayer] = stageLayerRanges(files.config.numLayers, shape.pp)[stage];
      const plan = { tp: shape.tp, tpRank, startLayer, endLayer };
      const backend = new ReferenceBackend();
      const weights = loadStageWeights(files.store, files.config, backend, plan);
      bytesRead.push(files.store.bytesRead);
      const group = new CollectiveGroup(new Communicator(transport, stageRanks(stage, shape)));
      return new RankRunner(new StageModel(files.config, weights, backend, group, plan), transport, shape, kvDtype);
    } finally {
      files.store.close();
    }
  });
  return {
    runners,
    bytesRead,
    async step(layout, request) {
      const results = await Promise.all(runners.map((runner) => runner.step(layout, request)));
      return results.find((result) => result !== undefined)!;
    },
  };
}
