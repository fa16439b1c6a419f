/**
 * Tokens picked on a mesh's reporting rank (token-pick.ts) are the tokens one
 * process samples: stories260K on tp 2 worker processes, an engine core over
 * the mesh against one over the in-process model, with greedy and seeded
 * sampling (temperature, top-k, top-p, min-p) picked on the rank and the
 * requests that fall back to logits at the driver (logprobs, a constraint, a
 * logit bias, penalties) in the same batches; and pp 2, whose core keeps a
 * group of sequences per stage in flight. The runner is watched to show
 * which rows came back as ids and which as logits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../engine/engine.js';
import { EngineCore, type ModelRunner } from '../engine/engine-core.js';
import { samplingParams, type SamplingParams } from '../engine/sampler.js';
import type { SequenceOutput, SequenceRequest } from '../engine/sequence.js';
import type { PickedRows, TokenPick } from '../engine/token-pick.js';
import type { Batch } from '../model/batch.js';
import { fixture } from '../testing/fixtures.js';
import { openMeshEngine } from './mesh-engine.js';

const PROMPTS = [
  [1, 403, 407, 261],
  [1, 300, 290],
  [1, 378],
];

function request(promptIds: number[], sampling: Partial<SamplingParams>, extra: Partial<SequenceRequest> = {}): SequenceRequest {
  return { promptIds, maxTokens: 20, sampling: samplingParams(sampling), stop: [], ignoreEos: true, ...extra };
}

/** Picked on the rank. */
const PICKED: SequenceRequest[] = [
  request(PROMPTS[0], { temperature: 0 }),
  request(PROMPTS[1], { temperature: 0.9, seed: 17 }),
  request(PROMPTS[2], { temperature: 1.2, topK: 12, seed: 4 }),
  request(PROMPTS[0], { temperature: 0.8, topP: 0.85, seed: 99 }),
  request(PROMPTS[1], { temperature: 1, minP: 0.1, seed: 5 }),
  request(PROMPTS[2], { temperature: 0.7, topK: 30, topP: 0.9, minP: 0.02, seed: 123 }),
];

/** Sampled at the driver from the row's logits. */
const FALLBACK: SequenceRequest[] = [
  request(PROMPTS[0], { temperature: 0 }, { logprobs: 3 }),
  request(PROMPTS[1], { temperature: 0.9, seed: 8 }, { logprobs: 0 }),
  request(PROMPTS[2], { temperature: 1, seed: 2 }, { constraint: { type: 'regex', pattern: '[a-z ]{1,40}' }, ignoreEos: false }),
  request(PROMPTS[0], { temperature: 0 }, { logitBias: [[261, 4]] }),
  request(PROMPTS[1], { temperature: 0.8, repetitionPenalty: 1.3, presencePenalty: 0.4, seed: 6 }),
];

/** Every output of each sequence, in order. */
async function runAll(core: EngineCore, requests: readonly SequenceRequest[]): Promise<SequenceOutput[][]> {
  const outputs = requests.map((): SequenceOutput[] => []);
  requests.forEach((r, i) => core.add(i, r));
  while (core.hasWork) for (const output of (await core.step()).outputs) outputs[output.sequenceId].push(output);
  return outputs;
}

/** The mesh's runner, counting the rows that came back picked and as logits. */
function watched(runner: ModelRunner & Required<Pick<ModelRunner, 'forwardPicked'>>, vocab: number): { runner: ModelRunner; counts: { picked: number; logits: number } } {
  const counts = { picked: 0, logits: 0 };
  return {
    counts,
    runner: {
      kvPoolLayers: runner.kvPoolLayers,
      forwardBatch: (batch: Batch) => runner.forwardBatch(batch),
      forwardPicked: async (batch: Batch, picks: readonly (TokenPick | undefined)[]): Promise<PickedRows> => {
        const rows = await runner.forwardPicked(batch, picks);
        counts.picked += rows.ids.filter((id) => id >= 0).length;
        counts.logits += rows.logits.length / vocab;
        return rows;
      },
    },
  };
}

test('tp 2: tokens picked on the rank and fallback rows sampled at the driver match one process exactly', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const engine = await Engine.open(path);
  const options = { kvCacheMib: 0, numBlocks: 64, maxNumSeqs: 16, maxBatchTokens: 64 };
  const requests = [...PICKED, ...FALLBACK];
  const expected = await runAll(new EngineCore(engine.transformer, engine.config, engine.tokenizer, options), requests);
  const { coordinator, coreRunner } = await openMeshEngine(path, { tp: 2, pp: 1, transport: 'unix', spawn: true, heartbeat: { timeoutMs: 15_000 } });
  try {
    const { runner, counts } = watched(coreRunner, engine.config.vocabSize);
    const outputs = await runAll(new EngineCore(runner, engine.config, engine.tokenizer, options), requests);
    outputs.forEach((sequence, i) => assert.deepEqual(sequence, expected[i], `sequence ${i}: ${JSON.stringify(requests[i].sampling)}`));
    const tokens = (from: number, to: number) => expected.slice(from, to).reduce((sum, sequence) => sum + sequence.reduce((n, output) => n + output.ids.length, 0), 0);
    assert.equal(counts.picked, tokens(0, PICKED.length), 'every token of the pickable sequences was picked on the rank');
    // A constrained sequence that ends at its end-of-sequence token has one row more than ids.
    assert.ok(counts.logits >= tokens(PICKED.length, requests.length), 'the fallback sequences got their logits');
  } finally {
    await coordinator.close();
  }
});

test('pp 2 with a group per stage in flight: picks come back through both stages, tokens unchanged', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const engine = await Engine.open(path);
  const options = { kvCacheMib: 0, numBlocks: 64, maxNumSeqs: 16, maxBatchTokens: 64 };
  const requests = [PICKED[0], FALLBACK[0], PICKED[1], FALLBACK[4], PICKED[3]];
  const expected = await runAll(new EngineCore(engine.transformer, engine.config, engine.tokenizer, options), requests);
  const { coordinator, coreRunner } = await openMeshEngine(path, { tp: 1, pp: 2, transport: 'shm', spawn: true, heartbeat: { timeoutMs: 15_000 } });
  try {
    assert.equal(coreRunner.pipelineGroups, 2, 'the core keeps a group of sequences per stage in flight');
    const outputs = await runAll(new EngineCore(coreRunner, engine.config, engine.tokenizer, options), requests);
    outputs.forEach((sequence, i) => assert.deepEqual(sequence, expected[i], `sequence ${i}`));
  } finally {
    await coordinator.close();
  }
});
