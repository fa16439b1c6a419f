/**
 * The batched KV ops of the shared backend suite: writeKvBatch and
 * attentionBatch over a batch of several sequences (prefill chunks and decode
 * tokens of different lengths, each sequence with its own shuffled block
 * table in shared pools, f32 and f16 KV) must give each segment exactly the
 * bits of the per-sequence writeKv and attention, and leave rows outside
 * every segment zero.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, KvPool, KvSegment } from './backend.js';
import { isTesseraError } from '../core/errors.js';
import { KV_DTYPES, type KvDtype } from '../core/kv-dtype.js';
import { TestRandom, assertBitwise, assertSamePool, makePool } from './backend-oracle.js';

interface BatchShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
}

/** One sequence of the batch: `history` positions already cached, then `count` new rows. */
interface SequencePlan {
  history: number;
  count: number;
}

const SHAPES: BatchShape[] = [
  { numHeads: 4, numKvHeads: 4, headDim: 16, blockSize: 4 },
  { numHeads: 6, numKvHeads: 2, headDim: 13, blockSize: 8 },
  { numHeads: 8, numKvHeads: 1, headDim: 72, blockSize: 16 },
  { numHeads: 32, numKvHeads: 4, headDim: 64, blockSize: 16 },
];

// A fresh prefill, decode tokens at block edges and deep in a block, chunks
// that cross blocks, an empty segment, and a long prefill chunk.
const PLANS: SequencePlan[] = [
  { history: 0, count: 7 },
  { history: 12, count: 1 },
  { history: 31, count: 1 },
  { history: 5, count: 9 },
  { history: 0, count: 1 },
  { history: 16, count: 0 },
  { history: 47, count: 1 },
  { history: 3, count: 40 },
  { history: 63, count: 1 },
];

export function batchedKvCases(makeBackend: () => Backend): void {
  for (const shape of SHAPES) {
    for (const dtype of KV_DTYPES) {
      const label = `${shape.numHeads}/${shape.numKvHeads} heads of ${shape.headDim}, block ${shape.blockSize}, ${dtype} KV`;
      test(`writeKvBatch and attentionBatch (${label}) give every segment the bits of its own writeKv and attention, into a new or a given buffer`, () => {
        batchScenario(makeBackend(), shape, dtype, new TestRandom(70 + shape.headDim));
      });
    }
  }

  test('writeKvBatch and attentionBatch reject overlapping or out-of-batch segments and positions beyond a block table', () => {
    const backend = makeBackend();
    const [keyCache, valueCache] = [makePool(4, 4, 1, 8), makePool(4, 4, 1, 8)];
    const rows = new Float32Array(3 * 8);
    const query = new Float32Array(3 * 2 * 8);
    const segment = (start: number, positions: number[], blockTable = [0, 1]): KvSegment => ({
      start, positions: Int32Array.from(positions), blockTable: Int32Array.from(blockTable),
    });
    const bad: KvSegment[][] = [
      [segment(0, [0, 1]), segment(1, [5])],
      [segment(2, [0, 1])],
      [segment(0, [9])],
      [segment(0, [0], [7])],
    ];
    for (const segments of bad) {
      const coded = (e: unknown) => isTesseraError(e) && e.code === 'TESSERA_ERR_INVALID_ARGUMENT';
      assert.throws(() => backend.writeKvBatch({ keyCache, valueCache, keys: rows, values: rows, segments }), coded);
      const args = { query, keyCache, valueCache, segments, numHeads: 2, numKvHeads: 1, headDim: 8, scale: 0.3 };
      assert.throws(() => backend.attentionBatch(args), coded);
    }
  });
}

function batchScenario(backend: Backend, shape: BatchShape, dtype: KvDtype, random: TestRandom): void {
  const { numHeads, numKvHeads, headDim, blockSize } = shape;
  const rowKv = numKvHeads * headDim;
  const rowQ = numHeads * headDim;
  const blocksOf = (plan: SequencePlan) => Math.ceil((plan.history + plan.count) / blockSize) || 1;
  const numBlocks = PLANS.reduce((total, plan) => total + blocksOf(plan), 0) + 2;
  // Every sequence's blocks, scattered over the shared pools.
  const physical = random.permutation(numBlocks);
  let taken = 0;
  const sequences = PLANS.map((plan) => {
    const length = plan.history + plan.count;
    const blockTable = physical.slice(taken, (taken += blocksOf(plan)));
    return { plan, blockTable, keys: random.floats(length * rowKv, 2), values: random.floats(length * rowKv), query: random.floats(plan.count * rowQ, 2) };
  });
  const scale = 1 / Math.sqrt(headDim);
  const range = (from: number, to: number) => Int32Array.from({ length: to - from }, (_, i) => from + i);

  /** Pools holding every sequence's history, written per sequence. */
  const historyPools = (): [KvPool, KvPool] => {
    const pools: [KvPool, KvPool] = [makePool(numBlocks, blockSize, numKvHeads, headDim, dtype), makePool(numBlocks, blockSize, numKvHeads, headDim, dtype)];
    for (const { plan, blockTable, keys, values } of sequences) {
      backend.writeKv(pools[0], blockTable, range(0, plan.history), keys.subarray(0, plan.history * rowKv));
      backend.writeKv(pools[1], blockTable, range(0, plan.history), values.subarray(0, plan.history * rowKv));
    }
    return pools;
  };

  // One sequence at a time, as callers did before the batched ops.
  const [keyAlone, valueAlone] = historyPools();
  const alone = sequences.map(({ plan, blockTable, keys, values, query }) => {
    const positions = range(plan.history, plan.history + plan.count);
    backend.writeKv(keyAlone, blockTable, positions, keys.subarray(plan.history * rowKv));
    backend.writeKv(valueAlone, blockTable, positions, values.subarray(plan.history * rowKv));
    return backend.attention({ query, keyCache: keyAlone, valueCache: valueAlone, blockTable, positions, numHeads, numKvHeads, headDim, scale });
  });

  // All at once: segments in a shuffled order, with a spare row between two of them.
  const order = random.permutation(sequences.length);
  const segments: KvSegment[] = [];
  let row = 0;
  for (const i of order) {
    const { plan, blockTable } = sequences[i];
    segments[i] = { start: row, positions: range(plan.history, plan.history + plan.count), blockTable };
    row += plan.count + (i === order[2] ? 1 : 0);
  }
  const numTokens = row;
  const [keys, values, query] = [new Float32Array(numTokens * rowKv), new Float32Array(numTokens * rowKv), new Float32Array(numTokens * rowQ)];
  sequences.forEach((sequence, i) => {
    keys.set(sequence.keys.subarray(sequence.plan.history * rowKv), segments[i].start * rowKv);
    values.set(sequence.values.subarray(sequence.plan.history * rowKv), segments[i].start * rowKv);
    query.set(sequence.query, segments[i].start * rowQ);
  });
  const spare = segments[order[2]].start + sequences[order[2]].plan.count;
  query.fill(7, spare * rowQ, (spare + 1) * rowQ);
  const [keyCache, valueCache] = historyPools();
  backend.writeKvBatch({ keyCache, valueCache, keys, values, segments });
  assertSamePool(keyCache, keyAlone, 'key pool after writeKvBatch');
  assertSamePool(valueCache, valueAlone, 'value pool after writeKvBatch');
  const out = backend.attentionBatch({ query, keyCache, valueCache, segments, numHeads, numKvHeads, headDim, scale });
  assert.equal(out.length, numTokens * rowQ);
  sequences.forEach(({ plan }, i) => {
    const rows = out.subarray(segments[i].start * rowQ, (segments[i].start + plan.count) * rowQ);
    assertBitwise(rows, alone[i], `segment ${i} (history ${plan.history}, ${plan.count} rows)`);
  });
  assert.ok(out.subarray(spare * rowQ, (spare + 1) * rowQ).every((v) => v === 0), 'a row in no segment stays zero');
  // A caller's buffer, full of stale values: the same bits, and the row in no segment zeroed.
  const given = new Float32Array(numTokens * rowQ).fill(-3);
  assert.equal(backend.attentionBatch({ query, keyCache, valueCache, segments, numHeads, numKvHeads, headDim, scale, out: given }), given);
  assertBitwise(given, out, 'attentionBatch into a given buffer');
  assert.throws(
    () => backend.attentionBatch({ query, keyCache, valueCache, segments, numHeads, numKvHeads, headDim, scale, out: new Float32Array(numTokens * rowQ - 1) }),
    (error: unknown) => isTesseraError(error) && error.code === 'TESSERA_ERR_INVALID_ARGUMENT',
  );
}
