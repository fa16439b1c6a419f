/**
 * Decode bursts (decode-burst.ts): how many later steps a step's rows allow,
 * the requests of each later step, and the driver's stash, which answers a
 * step only when every segment is the row a burst computed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TokenPick } from '../engine/token-pick.js';
import type { Batch, SequenceKv } from '../model/batch.js';
import { BurstStash, burstRequests, burstSteps, MAX_BURST } from './decode-burst.js';
import type { StepRequest } from './rank-runner.js';

const LAYOUT = { numBlocks: 16, blockSize: 4 };
const PICK: TokenPick = { temperature: 0.8, topK: 40, topP: 0.9, minP: 0, u: 0.25, burst: [0.5, 0.125, 0.75] };

/** null: a row sent as logits. */
function decode(position: number, id: number, blocks: number[], pick: TokenPick | null = PICK): StepRequest {
  return { blockTable: Int32Array.from(blocks), ids: Int32Array.of(id), positions: Int32Array.of(position), rows: 'last', ...(pick ? { pick } : {}) };
}

test('burstSteps: the fewest uniforms of any row, cut where a block table ends; 0 for anything but picked one-token decodes', () => {
  assert.equal(burstSteps([decode(5, 9, [0, 1, 2]), decode(2, 3, [3, 4])], LAYOUT), 3);
  assert.equal(burstSteps([decode(5, 9, [0, 1, 2]), decode(2, 3, [3, 4], { ...PICK, burst: [0.5] })], LAYOUT), 1, 'the row with one uniform');
  // Position 5 in two blocks of 4 (positions 0..7): the later steps write 6 and 7 only.
  assert.equal(burstSteps([decode(5, 9, [0, 1])], LAYOUT), 2);
  assert.equal(burstSteps([decode(7, 9, [0, 1])], LAYOUT), 0, 'the block table ends at the step itself');
  assert.equal(burstSteps([decode(5, 9, [0, 1, 2]), decode(2, 3, [3, 4], { ...PICK, burst: undefined })], LAYOUT), 0, 'a row without a burst');
  assert.equal(burstSteps([decode(5, 9, [0, 1, 2]), decode(2, 3, [3, 4], null)], LAYOUT), 0, 'a row sent as logits');
  const prefill: StepRequest = { ...decode(0, 1, [5, 6]), ids: Int32Array.of(1, 2), positions: Int32Array.of(0, 1) };
  assert.equal(burstSteps([prefill], LAYOUT), 0, 'a prompt chunk');
  assert.equal(burstSteps([], LAYOUT), 0);
  const long = { ...PICK, burst: Array.from({ length: MAX_BURST + 5 }, () => 0.5) };
  assert.equal(burstSteps([decode(0, 9, Array.from({ length: 40 }, (_, i) => i))], { numBlocks: 64, blockSize: 4 }), 3);
  assert.equal(burstSteps([decode(0, 9, Array.from({ length: 40 }, (_, i) => i), long)], { numBlocks: 64, blockSize: 4 }), MAX_BURST);
});

test('burstRequests: step j of a burst is each segment j positions on, fed the ids given, with that position\'s uniform and no burst of its own', () => {
  const requests = [decode(5, 9, [0, 1, 2]), decode(2, 3, [3, 4], { ...PICK, u: 0.1, burst: [0.2, 0.3, 0.4] })];
  const second = burstRequests(requests, 2, Int32Array.of(11, 12));
  assert.deepEqual(
    second.map((request) => ({ ids: [...request.ids], positions: [...request.positions], blocks: [...request.blockTable], pick: request.pick })),
    [
      { ids: [11], positions: [7], blocks: [0, 1, 2], pick: { temperature: 0.8, topK: 40, topP: 0.9, minP: 0, u: 0.125 } },
      { ids: [12], positions: [4], blocks: [3, 4], pick: { temperature: 0.8, topK: 40, topP: 0.9, minP: 0, u: 0.3 } },
    ],
  );
});

/** A one-sequence engine batch: its kv object stands for the sequence. */
function batchOf(kvs: SequenceKv[], positions: number[], ids: number[]): Batch {
  return { ids: Int32Array.from(ids), segments: kvs.map((kv, s) => ({ kv, start: s, positions: Int32Array.of(positions[s]), logits: 'last' as const })) };
}

function kvOf(blocks: number[]): SequenceKv {
  return { keys: [], values: [], blockTable: Int32Array.from(blocks) };
}

/** The engine's pick at position p: the uniform it draws there (PICK's burst lists the ones after position 6). */
function pickAt(u: number): TokenPick {
  return { temperature: 0.8, topK: 40, topP: 0.9, minP: 0, u, burst: [0.9, 0.9] };
}

test('BurstStash: the later steps answer the core\'s next steps in order while they ask for the same rows', () => {
  const stash = new BurstStash();
  const [a, b] = [kvOf([0, 1, 2]), kvOf([3, 4])];
  // Step at positions 5 and 2 picked 20 and 30; the burst's two later steps picked 21, 22 and 31, 32.
  stash.keep(1, batchOf([a, b], [5, 2], [9, 3]), [PICK, { ...PICK, burst: [0.2, 0.3] }], { ids: Int32Array.of(20, 30), logits: new Float32Array(0), following: [Int32Array.of(21, 31), Int32Array.of(22, 32)] });
  const first = stash.take(1, batchOf([a, b], [6, 3], [20, 30]), [pickAt(0.5), pickAt(0.2)]);
  assert.deepEqual(first && [...first.ids], [21, 31]);
  // The core's block table grew meanwhile (a block reserved ahead): the burst's blocks are still its first ones.
  b.blockTable = Int32Array.of(3, 4, 5);
  const second = stash.take(1, batchOf([a, b], [7, 4], [21, 31]), [pickAt(0.125), pickAt(0.3)]);
  assert.deepEqual(second && [...second.ids], [22, 32]);
  assert.equal(stash.take(1, batchOf([a, b], [8, 5], [22, 32]), [pickAt(0.75), pickAt(0.4)]), undefined, 'used up');
});

test('BurstStash: any other row goes to the ranks, and drops its sequences\' later steps', () => {
  const kept = (): { stash: BurstStash; a: SequenceKv; b: SequenceKv } => {
    const stash = new BurstStash();
    const [a, b] = [kvOf([0, 1, 2]), kvOf([3, 4])];
    stash.keep(1, batchOf([a, b], [5, 2], [9, 3]), [PICK, { ...PICK, burst: [0.2, 0.3] }], { ids: Int32Array.of(20, 30), logits: new Float32Array(0), following: [Int32Array.of(21, 31), Int32Array.of(22, 32)] });
    return { stash, a, b };
  };
  const cases: [string, (k: ReturnType<typeof kept>) => [Batch, TokenPick[], number?]][] = [
    ['another generation', ({ a, b }) => [batchOf([a, b], [6, 3], [20, 30]), [pickAt(0.5), pickAt(0.2)], 2]],
    ['another input id (a sequence resumed with other tokens)', ({ a, b }) => [batchOf([a, b], [6, 3], [20, 99]), [pickAt(0.5), pickAt(0.2)]]],
    ['another position', ({ a, b }) => [batchOf([a, b], [6, 4], [20, 30]), [pickAt(0.5), pickAt(0.2)]]],
    ['another uniform (other sampling)', ({ a, b }) => [batchOf([a, b], [6, 3], [20, 30]), [pickAt(0.5), pickAt(0.7)]]],
    ['another temperature', ({ a, b }) => [batchOf([a, b], [6, 3], [20, 30]), [pickAt(0.5), { ...pickAt(0.2), temperature: 1 }]]],
    ['a row for its logits', ({ a, b }) => [batchOf([a, b], [6, 3], [20, 30]), [pickAt(0.5), undefined as unknown as TokenPick]]],
    ['a sequence without a burst (it joined)', ({ a, b }) => [batchOf([a, b, kvOf([7])], [6, 3, 0], [20, 30, 1]), [pickAt(0.5), pickAt(0.2), pickAt(0.6)]]],
  ];
  for (const [name, make] of cases) {
    const k = kept();
    const [batch, picks, generation = 1] = make(k);
    assert.equal(k.stash.take(generation, batch, picks), undefined, name);
    assert.equal(k.stash.take(1, batchOf([k.a, k.b], [6, 3], [20, 30]), [pickAt(0.5), pickAt(0.2)]), undefined, `${name}: the later steps are dropped`);
  }
  // A sequence preempted and recomputed into other blocks.
  const k = kept();
  k.a.blockTable = Int32Array.of(8, 9, 10);
  assert.equal(k.stash.take(1, batchOf([k.a, k.b], [6, 3], [20, 30]), [pickAt(0.5), pickAt(0.2)]), undefined, 'other blocks');
});
