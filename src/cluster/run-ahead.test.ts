/**
 * Running ahead (run-ahead.ts): which steps qualify, the step a rank
 * computes next, and which later steps it answers; then stories260K on tp 2
 * worker processes under a serving load that changes its batch (sequences
 * that stop at different lengths, requests that join while others decode):
 * every output equals one process's, the ranks answered steps from ones they
 * had computed ahead and threw others away, and with TESSERA_RUN_AHEAD=0
 * they compute none.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../engine/engine.js';
import { EngineCore } from '../engine/engine-core.js';
import { samplingParams, type SamplingParams } from '../engine/sampler.js';
import type { SequenceOutput, SequenceRequest } from '../engine/sequence.js';
import type { TokenPick } from '../engine/token-pick.js';
import { fixture } from '../testing/fixtures.js';
import { openMeshEngine } from './mesh-engine.js';
import type { StepRequest } from './rank-runner.js';
import { canRunAhead, matchAhead, nextRequests, rowsInOrder, runAheadWanted, type AheadStep } from './run-ahead.js';

const LAYOUT = { numBlocks: 32, blockSize: 4 };
const PICK: TokenPick = { temperature: 0.8, topK: 40, topP: 0.9, minP: 0, u: 0.25, next: 0.5 };

/** A one-token decode segment; pick null: its logits go to the driver. */
function decode(block: number, position: number, id: number, pick: TokenPick | null = PICK): StepRequest {
  return { blockTable: Int32Array.of(block, block + 1), ids: Int32Array.of(id), positions: Int32Array.of(position), rows: 'last', ...(pick ? { pick } : {}) };
}

test('a step runs ahead only when every segment is a one-token decode picked with a next uniform, its next position inside its blocks', () => {
  assert.equal(canRunAhead([decode(0, 5, 9), decode(2, 6, 3)], LAYOUT), true);
  assert.equal(canRunAhead([], LAYOUT), false);
  assert.equal(canRunAhead([decode(0, 5, 9), decode(2, 6, 3, { ...PICK, next: undefined })], LAYOUT), false, 'a row the driver will not ask for again');
  assert.equal(canRunAhead([decode(0, 5, 9, null)], LAYOUT), false, 'a row whose logits go to the driver');
  assert.equal(canRunAhead([decode(0, 7, 9)], LAYOUT), false, 'position 8 needs a third block');
  const prefill: StepRequest = { ...decode(0, 0, 1), ids: Int32Array.of(1, 2), positions: Int32Array.of(0, 1) };
  assert.equal(canRunAhead([prefill], LAYOUT), false);
});

test('the next step feeds each segment its picked id one position on, picking with the next uniform', () => {
  const [next] = nextRequests([decode(0, 5, 9)], Int32Array.of(42));
  assert.deepEqual([...next.ids], [42]);
  assert.deepEqual([...next.positions], [6]);
  assert.deepEqual(next.pick, { temperature: 0.8, topK: 40, topP: 0.9, minP: 0, u: 0.5 });
  assert.deepEqual([...next.blockTable], [0, 1]);
});

test('a later step is answered from the one computed ahead when it asks for the same rows or some of them, in any order; else not', () => {
  const requests = [decode(0, 6, 11), decode(2, 5, 12), decode(4, 6, 13)];
  const ahead: AheadStep = { generation: 3, layout: LAYOUT, requests, rows: { ids: Int32Array.of(101, 102, 103), logits: new Float32Array(0) }, times: { stepMs: 1, computeMs: 1, waitMs: 0, transferMs: 0, eventLoopMs: 0 } };
  const asked = (step: StepRequest[]) => matchAhead(ahead, 3, LAYOUT, step);
  assert.deepEqual(asked(requests), [0, 1, 2]);
  assert.deepEqual(asked([requests[2], requests[0]]), [2, 0], 'a sequence stopped, the rest reordered');
  assert.deepEqual(rowsInOrder(ahead.rows, [2, 0]).ids, Int32Array.of(103, 101));
  assert.deepEqual(asked([{ ...requests[0], next: undefined } as StepRequest, { ...requests[1], pick: { ...PICK, next: 0.75 } }]), [0, 1], 'the next uniform does not change this row');
  assert.deepEqual(asked([requests[0], { ...requests[1], blockTable: Int32Array.of(2, 3, 7) }]), [0, 1], 'a block added past the ones it used');
  assert.equal(asked([requests[0], decode(6, 0, 1)]), undefined, 'a sequence that joined');
  assert.equal(asked([requests[0], { ...requests[1], ids: Int32Array.of(99) }]), undefined, 'another id');
  assert.equal(asked([requests[0], { ...requests[1], pick: { ...PICK, u: 0.3 } }]), undefined, 'another uniform');
  assert.equal(asked([requests[0], { ...requests[1], blockTable: Int32Array.of(2, 9) }]), undefined, 'another block');
  assert.equal(asked([requests[0], requests[0]]), undefined, 'one row answers one segment');
  assert.equal(matchAhead(ahead, 4, LAYOUT, requests), undefined, 'another generation');
  assert.equal(matchAhead(ahead, 3, { ...LAYOUT, numBlocks: 64 }, requests), undefined, 'another pool');
});

function request(promptIds: number[], maxTokens: number, sampling: Partial<SamplingParams>): SequenceRequest {
  return { promptIds, maxTokens, sampling: samplingParams(sampling), stop: [], ignoreEos: true };
}

const FIRST: SequenceRequest[] = [
  request([1, 403, 407, 261], 9, { temperature: 0 }),
  request([1, 300, 290], 23, { temperature: 0.9, seed: 17 }),
  request([1, 378], 16, { temperature: 1.2, topK: 12, seed: 4 }),
];
/** Join after a few steps, while the first ones decode. */
const LATER: SequenceRequest[] = [request([1, 290, 300, 378, 403], 12, { temperature: 0.8, topP: 0.85, seed: 99 }), request([1, 261], 7, { temperature: 0 })];

/** Every output of each sequence, in order; LATER joins after `joinAfter` steps. */
async function serve(core: EngineCore, joinAfter: number): Promise<SequenceOutput[][]> {
  const all = [...FIRST, ...LATER];
  const outputs = all.map((): SequenceOutput[] => []);
  FIRST.forEach((r, i) => core.add(i, r));
  for (let steps = 0; core.hasWork || steps <= joinAfter; steps++) {
    if (steps === joinAfter) LATER.forEach((r, i) => core.add(FIRST.length + i, r));
    for (const output of (await core.step()).outputs) outputs[output.sequenceId].push(output);
  }
  return outputs;
}

test('ranks run ahead unless forked ones fill the cores; TESSERA_RUN_AHEAD=1 or 0 decides either way', () => {
  // 2 ranks of 1 thread on 2 cores fill them; on 16 cores 2 × 8 do, 2 × 4 leave 8 for the driver.
  assert.equal(runAheadWanted(undefined, { ranks: 2, threadsPerRank: 1 }, 2), false);
  assert.equal(runAheadWanted(undefined, { ranks: 2, threadsPerRank: 8 }, 16), false);
  assert.equal(runAheadWanted(undefined, { ranks: 2, threadsPerRank: 4 }, 16), true);
  // Threads 0: each rank takes every core.
  assert.equal(runAheadWanted(undefined, { ranks: 2, threadsPerRank: 0 }, 16), false);
  // Joined workers: the driver's machine is not theirs.
  assert.equal(runAheadWanted(undefined, undefined, 2), true);
  assert.equal(runAheadWanted('1', { ranks: 2, threadsPerRank: 1 }, 2), true);
  assert.equal(runAheadWanted('0', undefined, 64), false);
});

test('tp 2: the ranks run ahead through stops and joins, and every output equals one process', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const engine = await Engine.open(path);
  const options = { kvCacheMib: 0, numBlocks: 64, maxNumSeqs: 16, maxBatchTokens: 64 };
  const expected = await serve(new EngineCore(engine.transformer, engine.config, engine.tokenizer, options), 5);
  for (const runAhead of [true, false]) {
    // Forked ranks fill this machine's cores (each with every core's threads), where running ahead is off unless asked for.
    process.env.TESSERA_RUN_AHEAD = runAhead ? '1' : '0';
    const { coordinator, coreRunner } = await openMeshEngine(path, { tp: 2, pp: 1, transport: 'shm', spawn: true, heartbeat: { timeoutMs: 15_000 } });
    try {
      const outputs = await serve(new EngineCore(coreRunner, engine.config, engine.tokenizer, options), 5);
      outputs.forEach((sequence, i) => assert.deepEqual(sequence, expected[i], `sequence ${i}, run-ahead ${runAhead}`));
    } finally {
      await coordinator.close();
      delete process.env.TESSERA_RUN_AHEAD;
    }
    const counts = coordinator.rankStats.map((stats) => stats.ahead);
    assert.equal(counts.length, 2);
    for (const ahead of counts) {
      if (runAhead) {
        assert.ok(ahead && ahead.used > 10, `steps answered from ones computed ahead: ${JSON.stringify(ahead)}`);
        assert.ok(ahead.missed > 0, 'a join (and a block boundary) throws a step computed ahead away');
      } else assert.deepEqual(ahead, { used: 0, missed: 0 });
    }
  }
});
