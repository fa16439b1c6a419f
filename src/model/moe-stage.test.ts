/**
 * Tensor and expert parallelism together, in one process: attention split
 * by heads over tp ranks, experts spread over the same ranks (ep = tp) or
 * whole on each (ep = 1), pipeline stages too; prefill and decode logits
 * bit-identical to one unsplit model.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import { isTesseraError } from '../core/errors.js';
import { Engine } from '../engine/engine.js';
import { openModelFiles } from '../engine/model-files.js';
import { CollectiveGroup } from '../parallel/collective-group.js';
import { Communicator } from '../parallel/collectives.js';
import { inProcessMesh } from '../parallel/in-process-transport.js';
import { meshSize, placeOf, stageLayerRanges, stageRanks, type MeshShape } from '../parallel/mesh.js';
import { RankRunner, type KvLayout, type StepRequest } from '../cluster/rank-runner.js';
import { FIRST_BLOCK, ONE_BLOCK } from '../cluster/local-mesh.case.js';
import { ExpertGroup } from '../parallel/expert-group.js';
import { fixture } from '../testing/fixtures.js';
import { loadStageExpertFeedForwards } from './moe-stage.js';
import { StageModel } from './shard-stage.js';
import { loadStageWeights } from './shard-weights.js';

interface Shape extends MeshShape {
  ep: number;
}

function moeMesh(path: string, shape: Shape): { step(layout: KvLayout, request: StepRequest): Promise<Float32Array> } {
  const transports = inProcessMesh(meshSize(shape));
  const runners = transports.map((transport) => {
    const files = openModelFiles(path);
    try {
      const { stage, tpRank } = placeOf(transport.rank, shape);
      const [startLayer, endLayer] = stageLayerRanges(files.config.numLayers, shape.pp)[stage];
      const plan = { tp: shape.tp, tpRank, startLayer, endLayer };
      const backend = new ReferenceBackend();
      const weights = loadStageWeights(files.store, files.config, backend, plan);
      const ranks = stageRanks(stage, shape);
      const group = new CollectiveGroup(new Communicator(transport, ranks));
      // Its own communicator over the same ranks, so expert messages never interleave with TP ones.
      const experts = shape.ep > 1 ? new ExpertGroup(new Communicator(transport, ranks)) : undefined;
      const feedForwards = loadStageExpertFeedForwards(files.store, files.config, backend, plan, experts);
      return new RankRunner(new StageModel(files.config, weights, backend, group, plan, feedForwards), transport, shape);
    } finally {
      files.store.close();
    }
  });
  return {
    async step(layout, request) {
      const results = await Promise.all(runners.map((runner) => runner.step(layout, request)));
      return results.find((result) => result !== undefined)!;
    },
  };
}

const SHAPES: Shape[] = [
  { tp: 2, pp: 1, ep: 1 },
  { tp: 2, pp: 1, ep: 2 },
  { tp: 1, pp: 2, ep: 1 },
  { tp: 2, pp: 2, ep: 2 },
];

for (const name of ['qwen_moe_tiny', 'mixtral_scale']) {
  test(`${name}: prefill and decode logits bit-identical for tp 2 × ep 1/2, pp 2, and tp 2 × pp 2 × ep 2`, async (t) => {
    const path = fixture(t, `moe-fixtures/${name}.safetensors`);
    if (!path) return;
    const engine = await Engine.open(path);
    const prompt = [3, 14, 22, 13, 7];
    const next = 9;
    const expected = await engine.logits([...prompt, next]);
    const vocab = engine.config.vocabSize;
    for (const shape of SHAPES) {
      const mesh = moeMesh(path, shape);
      const label = `tp=${shape.tp} pp=${shape.pp} ep=${shape.ep}`;
      const prefill = await mesh.step(ONE_BLOCK, { blockTable: FIRST_BLOCK, ids: Int32Array.from(prompt), positions: Int32Array.from(prompt.keys()), rows: 'all' });
      assert.deepEqual(prefill, expected.subarray(0, prompt.length * vocab), `prefill at ${label}`);
      const decode = await mesh.step(ONE_BLOCK, { blockTable: FIRST_BLOCK, ids: Int32Array.of(next), positions: Int32Array.of(prompt.length), rows: 'last' });
      assert.deepEqual(decode, expected.subarray(prompt.length * vocab), `decode at ${label}`);
    }
  });
}

test('an ep that is neither 1 nor tp is refused with TESSERA_ERR_SHARD_CONSTRAINT', (t) => {
  const path = fixture(t, 'moe-fixtures/mixtral_scale.safetensors');
  if (!path) return;
  const files = openModelFiles(path);
  const fourRanks = { size: 4, rank: 0, allToAll: async () => [], allGather: async () => [] };
  assert.throws(
    () => loadStageExpertFeedForwards(files.store, files.config, new ReferenceBackend(), { tp: 2, tpRank: 0, startLayer: 0, endLayer: 2 }, fourRanks),
    (error: unknown) => isTesseraError(error) && error.code === 'TESSERA_ERR_SHARD_CONSTRAINT',
  );
  files.store.close();
});
