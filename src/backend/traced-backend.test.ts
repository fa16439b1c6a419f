/**
 * The traced backend changes no result (it runs the shared conformance suite
 * over the reference and native backends) and records one span per op call
 * with what the op touched; methods it does not know are forwarded and
 * traced too, optional methods stay absent where the wrapped backend lacks
 * them, and an op's error passes through untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBackendSuite } from './backend.case.js';
import { TestRandom, assertBitwise, encodeWeight, f32Bytes, makePool } from './backend-oracle.js';
import type { AttentionArgs, Backend } from './backend.js';
import { ReferenceBackend } from './reference/reference-backend.js';
import { NativeBackend } from './native/native-backend.js';
import { loadNativeAddon } from './native/native-addon.js';
import { tracedBackend } from './traced-backend.js';
import { epochMicros, type TraceEvent } from '../core/trace-event.js';
import { isTesseraError } from '../core/errors.js';

const nativeLoaded = loadNativeAddon().ok;

runBackendSuite('traced reference', () => tracedBackend(new ReferenceBackend(), { events: [], pid: 0 }));
if (nativeLoaded) runBackendSuite('traced native', () => tracedBackend(new NativeBackend({ floatActivations: true }), { events: [], pid: 0 }));

/** The spans of `events` that an op named `name` recorded. */
function spansOf(events: TraceEvent[], name: string): TraceEvent[] {
  return events.filter((event) => event.name === name);
}

test('each op call is one complete span, inside the call, on the given rank and track, with what it touched', () => {
  const events: TraceEvent[] = [];
  const plain = new ReferenceBackend();
  const traced = tracedBackend(plain, { events, pid: 3, tid: 5 });
  const random = new TestRandom(7);
  const [N, M, K] = [3, 5, 64];
  const { bytes } = encodeWeight('q8_0', random.floats(M * K));
  const x = random.floats(N * K);
  const before = epochMicros();
  const weight = traced.loadWeight('q8_0', [M, K], bytes);
  const out = traced.matmul(x, weight, N);
  const after = epochMicros();
  assertBitwise(out, plain.matmul(x, plain.loadWeight('q8_0', [M, K], bytes), N), 'traced matmul');
  assert.deepEqual(events.map((event) => event.name), ['loadWeight', 'matmul']);
  for (const event of events) {
    assert.equal(event.ph, 'X');
    assert.equal(event.cat, 'backend');
    assert.equal(event.pid, 3);
    assert.equal(event.tid, 5);
    assert.ok(event.ts! >= before && event.ts! + event.dur! <= after + 1, `${event.name} lies inside the call`);
    assert.ok(event.dur! >= 0);
  }
  // q8_0 stores 32 values in 34 bytes: 5 rows of 2 blocks.
  assert.deepEqual(spansOf(events, 'loadWeight')[0].args, { dtype: 'q8_0', shape: '[5, 64]', bytes: 340 });
  assert.deepEqual(spansOf(events, 'matmul')[0].args, { numTokens: 3, dtype: 'q8_0', shape: '[5, 64]', weightBytes: 340, flops: 2 * N * M * K });
});

test('norm, embedding, rope, KV writes, attention and pointwise ops record their sizes; results are unchanged', () => {
  const events: TraceEvent[] = [];
  const plain = new ReferenceBackend();
  const traced = tracedBackend(plain, { events, pid: 0 });
  const random = new TestRandom(8);
  const [numHeads, numKvHeads, headDim, blockSize] = [4, 2, 8, 4];
  const norm = traced.loadWeight('f32', [headDim], f32Bytes(random.floats(headDim)));
  const table = traced.loadWeight('f32', [10, headDim], f32Bytes(random.floats(10 * headDim)));
  const ids = Int32Array.from([1, 7, 7]);
  assertBitwise(traced.embed(ids, table), plain.embed(ids, table), 'embed');
  const x = random.floats(3 * headDim);
  assertBitwise(traced.rmsNorm(x, norm, 3, 1e-5), plain.rmsNorm(x, norm, 3, 1e-5), 'rmsNorm');
  const keys = makePool(2, blockSize, numKvHeads, headDim);
  const values = makePool(2, blockSize, numKvHeads, headDim);
  const blockTable = Int32Array.from([1, 0]);
  const positions = Int32Array.from([0, 1, 2, 3, 4]);
  traced.writeKv(keys, blockTable, positions, random.floats(5 * numKvHeads * headDim));
  traced.writeKv(values, blockTable, positions, random.floats(5 * numKvHeads * headDim));
  const query = random.floats(2 * numHeads * headDim);
  const attention: AttentionArgs = { query, keyCache: keys, valueCache: values, blockTable, positions: Int32Array.from([3, 4]), numHeads, numKvHeads, headDim, scale: 0.3 };
  assertBitwise(traced.attention(attention), plain.attention(attention), 'attention');
  // Two sequences in one batch: a decode token at position 6 and a chunk at positions 1..2 of another block table.
  const segments = [
    { start: 0, positions: Int32Array.of(6), blockTable: Int32Array.from([0, 1]) },
    { start: 1, positions: Int32Array.from([1, 2]), blockTable: Int32Array.from([1]) },
  ];
  const batchRows = random.floats(3 * numKvHeads * headDim);
  traced.writeKvBatch({ keyCache: keys, valueCache: values, keys: batchRows, values: batchRows, segments });
  const batchQuery = random.floats(3 * numHeads * headDim);
  const batch = { query: batchQuery, keyCache: keys, valueCache: values, segments, numHeads, numKvHeads, headDim, scale: 0.3 };
  assertBitwise(traced.attentionBatch(batch), plain.attentionBatch(batch), 'attentionBatch');
  const gate = random.floats(12);
  const up = random.floats(12);
  assertBitwise(traced.siluMul(gate, up), plain.siluMul(gate, up), 'siluMul');

  // Three of the ten rows are looked up: only those bytes are read.
  assert.deepEqual(spansOf(events, 'embed')[0].args, { numTokens: 3, dtype: 'f32', shape: '[10, 8]', weightBytes: 3 * headDim * 4 });
  assert.deepEqual(spansOf(events, 'rmsNorm')[0].args, { rows: 3, dim: headDim, weightBytes: headDim * 4 });
  assert.equal(spansOf(events, 'writeKv').length, 2);
  assert.deepEqual(spansOf(events, 'writeKv')[0].args, { numTokens: 5, numKvHeads, headDim, blockSize, dtype: 'f32', bytes: 5 * numKvHeads * headDim * 4 });
  // Queries at positions 3 and 4 read keys and values 0..4.
  assert.deepEqual(spansOf(events, 'attention')[0].args, { numTokens: 2, numHeads, numKvHeads, headDim, kvPositions: 5, kvBytes: 2 * 5 * numKvHeads * headDim * 4 });
  assert.deepEqual(spansOf(events, 'writeKvBatch')[0].args, { numTokens: 3, segments: 2, numKvHeads, headDim, blockSize, dtype: 'f32', bytes: 2 * 3 * numKvHeads * headDim * 4 });
  // Each segment reads its own sequence: positions 0..6 and 0..2.
  assert.deepEqual(spansOf(events, 'attentionBatch')[0].args, { numTokens: 3, segments: 2, numHeads, numKvHeads, headDim, kvPositions: 10, kvBytes: 2 * 10 * numKvHeads * headDim * 4 });
  assert.deepEqual(spansOf(events, 'siluMul')[0].args, { elements: 12 });
});

test('an op the decorator does not know is forwarded with its type and traced with generic arguments', () => {
  /** A backend with a batched op Backend does not declare, calling its own ops inside. */
  class BatchingBackend extends ReferenceBackend {
    attentionEach(calls: readonly AttentionArgs[], label: string): Float32Array[] {
      return calls.map((call) => this.attention(call));
    }
  }
  const events: TraceEvent[] = [];
  const plain = new BatchingBackend();
  const traced = tracedBackend(plain, { events, pid: 1 });
  const pool = makePool(1, 4, 1, 4);
  pool.data.fill(0.5);
  const call: AttentionArgs = { query: new Float32Array(8).fill(1), keyCache: pool, valueCache: pool, blockTable: Int32Array.of(0), positions: Int32Array.of(2), numHeads: 2, numKvHeads: 1, headDim: 4, scale: 0.5 };
  const outs = traced.attentionEach([call, call], 'two');
  assert.equal(outs.length, 2);
  assertBitwise(outs[1], plain.attention(call), 'forwarded result');
  // One span for the batched op; the attention calls it makes itself are inside it, not spans of their own.
  assert.deepEqual(events.map((event) => event.name), ['attentionEach']);
  assert.deepEqual(events[0].args, { arg0Length: 2, arg1: 'two' });
  assert.ok(traced instanceof BatchingBackend);
  assert.equal(traced.name, 'reference');
});

test('optional methods stay absent where the wrapped backend lacks them, and present where it has them', () => {
  const reference = new ReferenceBackend() as Backend;
  const events: TraceEvent[] = [];
  const traced = tracedBackend(reference, { events, pid: 0 });
  assert.equal('loadWeightFromFile' in traced, 'loadWeightFromFile' in reference);
  assert.equal(traced.loadWeightFromFile, undefined);
  if (nativeLoaded) {
    const native = tracedBackend(new NativeBackend() as Backend, { events: [], pid: 0 });
    assert.equal(typeof native.loadWeightFromFile, 'function');
  }
  // A method read twice is one function (callers may compare or cache it).
  assert.equal(traced.matmul, traced.matmul);
  // Object's methods are not ops.
  assert.equal(String(traced), '[object Object]');
  assert.equal(events.length, 0);
});

test("an op's error passes through unchanged, and its span is still recorded", () => {
  const events: TraceEvent[] = [];
  const plain = new ReferenceBackend();
  const traced = tracedBackend(plain, { events, pid: 0 });
  const caught = (load: () => unknown): unknown => {
    try {
      load();
    } catch (error) {
      return error;
    }
    return undefined;
  };
  const expected = caught(() => plain.loadWeight('q8_0', [2, 64], new Uint8Array(10)));
  const actual = caught(() => traced.loadWeight('q8_0', [2, 64], new Uint8Array(10)));
  assert.ok(isTesseraError(expected) && isTesseraError(actual));
  assert.equal(actual.code, expected.code);
  assert.equal(actual.message, expected.message);
  assert.deepEqual(events.map((event) => event.name), ['loadWeight']);
});

test('an asynchronous op spans until its promise settles', async () => {
  let settledAt = 0;
  class DeviceBackend extends ReferenceBackend {
    synchronize(): Promise<void> {
      return new Promise((resolve) =>
        setTimeout(() => {
          settledAt = epochMicros();
          resolve();
        }, 5),
      );
    }
  }
  const events: TraceEvent[] = [];
  await tracedBackend(new DeviceBackend(), { events, pid: 0 }).synchronize();
  assert.equal(events.length, 1);
  assert.ok(events[0].ts! + events[0].dur! >= settledAt - 1, 'the span ends after the work');
});
