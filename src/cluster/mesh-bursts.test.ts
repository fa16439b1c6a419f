/**
 * Decode bursts (decode-burst.ts) on real worker processes: stories260K on
 * tp 2, an engine core whose mesh computes 4 decode steps per round trip
 * against one over the in-process model. Sequences that stop inside a burst
 * (end-of-sequence, a stop string, max tokens), sequences that join while
 * others burst, seeded sampling and rows sent as logits all give the tokens
 * one process gives, with fewer round trips to the ranks; and `run`'s
 * one-sequence engine with bursts gives one process's tokens.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../engine/engine.js';
import { EngineCore } from '../engine/engine-core.js';
import { samplingParams, type SamplingParams } from '../engine/sampler.js';
import type { SequenceOutput, SequenceRequest } from '../engine/sequence.js';
import { fixture } from '../testing/fixtures.js';
import { openMeshEngine } from './mesh-engine.js';
import type { MeshCoordinator } from './coordinator.js';

function request(promptIds: number[], sampling: Partial<SamplingParams>, extra: Partial<SequenceRequest> = {}): SequenceRequest {
  return { promptIds, maxTokens: 23, sampling: samplingParams(sampling), stop: [], ignoreEos: true, ...extra };
}

const REQUESTS: SequenceRequest[] = [
  request([1, 403, 407, 261], { temperature: 0 }),
  request([1, 300, 290], { temperature: 0.9, seed: 17 }, { maxTokens: 9 }),
  request([1, 378], { temperature: 1.2, topK: 12, seed: 4 }, { ignoreEos: false, maxTokens: 60 }),
  request([1, 403, 407, 261], { temperature: 0.8, topP: 0.85, seed: 99 }, { stop: ['the'] }),
  request([1, 300, 290], { temperature: 1, minP: 0.1, seed: 5 }, { maxTokens: 2 }),
  // Sampled at the driver from its logits: no burst while it runs beside the others.
  request([1, 378], { temperature: 0.9, seed: 8 }, { logprobs: 2, maxTokens: 6 }),
];

/** Every output of each sequence, in order; sequence i joins before step joinAt[i]. */
async function runAll(core: EngineCore, requests: readonly SequenceRequest[], joinAt: readonly number[]): Promise<SequenceOutput[][]> {
  const outputs = requests.map((): SequenceOutput[] => []);
  for (let step = 0; core.hasWork || requests.some((_, i) => joinAt[i] >= step); step++) {
    requests.forEach((r, i) => joinAt[i] === step && core.add(i, r));
    if (core.hasWork) for (const output of (await core.step()).outputs) outputs[output.sequenceId].push(output);
  }
  return outputs;
}

/** Counts the steps the coordinator sends to the ranks (the real calls go through). */
function countTrips(coordinator: MeshCoordinator): { trips: number } {
  const counter = { trips: 0 };
  const send = coordinator.stepRows.bind(coordinator);
  coordinator.stepRows = (...args) => {
    counter.trips++;
    return send(...args);
  };
  return counter;
}

test('tp 2 with bursts of 4: every sequence\'s tokens are one process\'s, joins and stops inside a burst included, in fewer round trips', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const engine = await Engine.open(path);
  const options = { kvCacheMib: 0, numBlocks: 64, maxNumSeqs: 16, maxBatchTokens: 64 };
  const joinAt = [0, 0, 3, 7, 7, 30];
  const expected = await runAll(new EngineCore(engine.transformer, engine.config, engine.tokenizer, options), REQUESTS, joinAt);
  const { coordinator, coreRunner } = await openMeshEngine(path, { tp: 2, pp: 1, transport: 'shm', spawn: true, heartbeat: { timeoutMs: 15_000 }, decodeBurst: 4 });
  try {
    assert.equal(coreRunner.decodeBurst, 4);
    const counter = countTrips(coordinator);
    const core = new EngineCore(coreRunner, engine.config, engine.tokenizer, options);
    const outputs = await runAll(core, REQUESTS, joinAt);
    outputs.forEach((sequence, i) => assert.deepEqual(sequence, expected[i], `sequence ${i}: ${JSON.stringify(REQUESTS[i])}`));
    const steps = expected.reduce((most, sequence, i) => Math.max(most, joinAt[i] + sequence.length), 0);
    assert.ok(counter.trips < steps * 0.6, `${counter.trips} round trips for about ${steps} steps`);
    assert.ok(expected[2].at(-1)?.finish === 'stop' || expected[2].at(-1)?.finish === 'length');
    assert.equal(expected[3].at(-1)?.finish, 'stop', 'the stop string ends a sequence inside a burst');
  } finally {
    await coordinator.close();
  }
});

test('run\'s one-sequence engine on tp 2 with bursts of 8 generates one process\'s tokens, greedy and seeded', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const single = await Engine.open(path);
  const { engine, coordinator } = await openMeshEngine(path, { tp: 2, pp: 1, transport: 'unix', spawn: true, heartbeat: { timeoutMs: 15_000 }, decodeBurst: 8 });
  try {
    const counter = countTrips(coordinator);
    for (const sampling of [{ temperature: 0 }, { temperature: 0.9, topK: 20, seed: 3 }]) {
      const ask = { promptIds: [1, 403, 407], maxTokens: 37, sampling, ignoreEos: true };
      const expected = await single.complete(ask);
      const got = await engine.complete(ask);
      assert.deepEqual(got.ids, expected.ids, JSON.stringify(sampling));
    }
    // 36 decode steps each, 8 to a burst: 5 round trips and the prompt's.
    assert.ok(counter.trips <= 2 * 7, `${counter.trips} round trips for two sequences of 37 tokens`);
  } finally {
    await coordinator.close();
  }
});
