/**
 * The conformance suite every Backend runs (DESIGN §5): each op against a
 * naive float64 version within stated tolerances, and the determinism
 * contract of backend.ts checked bit for bit — batch size, K-sharding, and
 * prefill / chunked prefill / decode must not change a single bit.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { reductionLeafSize, type Backend, type Weight } from './backend.js';
import { DTYPE_LAYOUTS, byteSize, type DType } from '../core/dtype.js';
import { isTesseraError } from '../core/errors.js';
import {
  SUITE_DTYPES, TestRandom, assertBitwise, assertClose, combineShards, encodeWeight, f32Bytes, makePool,
  naiveAttention, naiveMatmul, naiveRmsNorm, naiveRope, roundToF16,
} from './backend-oracle.js';
import type { KvDtype } from '../core/kv-dtype.js';
import { f32ToF16 } from '../core/half.js';
import { batchedKvCases } from './backend-batch.case.js';

/** A weight [M, K] of random values in `dtype`, with the values its bytes decode to. */
function randomWeight(backend: Backend, dtype: DType, M: number, K: number, random: TestRandom) {
  const { bytes, decoded } = encodeWeight(dtype, random.floats(M * K));
  return { weight: backend.loadWeight(dtype, [M, K], bytes), bytes, decoded };
}

function f32Weight(backend: Backend, values: Float32Array): Weight {
  return backend.loadWeight('f32', [values.length], f32Bytes(values));
}

/** A K of exactly `leaves` reduction leaves of the dtype (so it splits into aligned shards). */
function leafAlignedK(dtype: DType, leaves: number): number {
  return reductionLeafSize(dtype) * leaves;
}

export function runBackendSuite(name: string, makeBackend: () => Backend): void {
  describe(`Backend conformance: ${name}`, () => {
    matmulCases(makeBackend);
    determinismCases(makeBackend);
    rowCases(makeBackend);
    pointwiseCases(makeBackend);
    attentionCases(makeBackend);
    batchedKvCases(makeBackend);
  });
}

function matmulCases(makeBackend: () => Backend): void {
  for (const dtype of SUITE_DTYPES) {
    test(`matmul ${dtype} matches a float64 matmul over the decoded weight`, () => {
      const backend = makeBackend();
      const random = new TestRandom(11);
      const block = DTYPE_LAYOUTS[dtype].blockSize;
      for (const [N, M, blocksOrK] of [[1, 1, 32], [3, 7, 64], [5, 13, 96], [7, 33, 256], [1, 65, 512]]) {
        const K = block === 1 ? blocksOrK : Math.max(block, Math.ceil(blocksOrK / block) * block);
        const { weight, decoded } = randomWeight(backend, dtype, M, K, random);
        const x = random.floats(N * K);
        const expected = naiveMatmul(x, decoded, N, M, K);
        const actual = backend.matmul(x, weight, N);
        assertClose(actual, expected.value, { atol: 1e-6, rtol: 2e-6, scale: expected.absolute }, `${dtype} [${N},${M},${K}]`);
      }
    });
  }

  test('matmul f32 with K not a multiple of the leaf size (a short last leaf)', () => {
    const backend = makeBackend();
    const random = new TestRandom(12);
    const [N, M, K] = [3, 5, 172];
    const { weight, decoded } = randomWeight(backend, 'f32', M, K, random);
    const x = random.floats(N * K);
    const expected = naiveMatmul(x, decoded, N, M, K);
    assertClose(backend.matmul(x, weight, N), expected.value, { atol: 1e-6, rtol: 2e-6, scale: expected.absolute }, 'K=172');
  });
}

function determinismCases(makeBackend: () => Backend): void {
  test('ops given output buffers fill and return them with the bits of a fresh result', () => {
    const backend = makeBackend();
    const random = new TestRandom(46);
    const [N, K] = [3, 64];
    const weights = [24, 40].map((M) => randomWeight(backend, 'q8_0', M, K, random).weight);
    const x = random.floats(N * K);
    const outs = [new Float32Array(N * 24).fill(7), new Float32Array(N * 40).fill(7)];
    const returned = backend.matmulMany(x, weights, N, outs);
    returned.forEach((out, i) => {
      assert.equal(out, outs[i]);
      assertBitwise(out, backend.matmul(x, weights[i], N), `matmulMany out ${i}`);
    });
    const norm = backend.loadWeight('f32', [K], f32Bytes(random.floats(K)));
    const normOut = new Float32Array(N * K).fill(3);
    assert.equal(backend.rmsNorm(x, norm, N, 1e-5, normOut), normOut);
    assertBitwise(normOut, backend.rmsNorm(x, norm, N, 1e-5), 'rmsNorm out');
    const [gate, up] = [random.floats(N * K, 3), random.floats(N * K)];
    const fresh = backend.siluMul(gate, up);
    // In place over gate, as the feed-forward block does.
    assert.equal(backend.siluMul(gate, up, gate), gate);
    assertBitwise(gate, fresh, 'siluMul in place');
    const badCalls = [
      () => backend.rmsNorm(x, norm, N, 1e-5, new Float32Array(5)),
      () => backend.siluMul(up, up, new Float32Array(2)),
      () => backend.matmulMany(x, [], N),
      () => backend.matmulMany(x, weights, N, [outs[0]]),
      () => backend.matmulMany(x, weights, N, [outs[0], new Float32Array(3)]),
    ];
    for (const bad of badCalls) {
      assert.throws(bad, (error: unknown) => isTesseraError(error) && error.code === 'TESSERA_ERR_INVALID_ARGUMENT');
    }
  });

  for (const dtype of SUITE_DTYPES) {
    test(`matmulMany ${dtype}: each result is bitwise the weight's own matmul`, () => {
      const backend = makeBackend();
      const random = new TestRandom(44);
      const K = leafAlignedK(dtype, 4);
      // Rows not a multiple of 16 and a weight of another type: the shared job and the fallback.
      const weights = [40, 7, 16, 33].map((M) => randomWeight(backend, dtype, M, K, random).weight);
      const other = randomWeight(backend, dtype === 'f32' ? 'f16' : 'f32', 9, K, random).weight;
      for (const N of [1, 3, 17]) {
        const x = random.floats(N * K);
        for (const set of [weights, [weights[1]], [weights[0], other, weights[2]]]) {
          const outs = backend.matmulMany(x, set, N);
          assert.equal(outs.length, set.length);
          set.forEach((w, i) => assertBitwise(outs[i], backend.matmul(x, w, N), `N=${N} weight ${i}`));
        }
      }
    });

    test(`matmul ${dtype}: a row's result is bitwise the same alone and in batches of 1..64`, () => {
      const backend = makeBackend();
      const random = new TestRandom(21);
      const [M, K, rows] = [24, leafAlignedK(dtype, 4), 64];
      const { weight } = randomWeight(backend, dtype, M, K, random);
      const x = random.floats(rows * K, 2);
      const alone = Array.from({ length: rows }, (_, r) => backend.matmul(x.subarray(r * K, (r + 1) * K), weight, 1));
      for (let size = 1; size <= rows; size++) {
        const start = (size * 7) % (rows - size + 1);
        const out = backend.matmul(x.slice(start * K, (start + size) * K), weight, size);
        for (let r = 0; r < size; r++) assertBitwise(out.subarray(r * M, (r + 1) * M), alone[start + r], `batch ${size} row ${start + r}`);
      }
    });

    for (const parts of [2, 4]) {
      test(`matmul ${dtype}: K split in ${parts} aligned shards, combined by the tree, equals the unsplit result bitwise`, () => {
        const backend = makeBackend();
        const random = new TestRandom(30 + parts);
        const [N, M, K] = [5, 9, leafAlignedK(dtype, 8)];
        const { weight, bytes } = randomWeight(backend, dtype, M, K, random);
        const x = random.floats(N * K);
        const partK = K / parts;
        const rowBytes = byteSize(dtype, K);
        const partBytes = byteSize(dtype, partK);
        const partials = Array.from({ length: parts }, (_, p) => {
          const shardBytes = new Uint8Array(M * partBytes);
          for (let m = 0; m < M; m++) {
            shardBytes.set(bytes.subarray(m * rowBytes + p * partBytes, m * rowBytes + (p + 1) * partBytes), m * partBytes);
          }
          const shardX = new Float32Array(N * partK);
          for (let n = 0; n < N; n++) shardX.set(x.subarray(n * K + p * partK, n * K + (p + 1) * partK), n * partK);
          return backend.matmul(shardX, backend.loadWeight(dtype, [M, partK], shardBytes), N);
        });
        assertBitwise(combineShards(partials), backend.matmul(x, weight, N), `${parts} shards`);
      });
    }
  }
}

function rowCases(makeBackend: () => Backend): void {
  for (const dtype of SUITE_DTYPES) {
    test(`readRows and embed ${dtype} return the decoded rows`, () => {
      const backend = makeBackend();
      const random = new TestRandom(41);
      const [vocab, dim] = [19, leafAlignedK(dtype, 2)];
      const { weight, decoded } = randomWeight(backend, dtype, vocab, dim, random);
      assertBitwise(backend.readRows(weight, 3, 8), decoded.slice(3 * dim, 8 * dim), 'readRows');
      assert.equal(backend.readRows(weight, 4, 4).length, 0);
      const ids = Int32Array.from([5, 0, 18, 5]);
      const expected = new Float32Array(ids.length * dim);
      ids.forEach((id, t) => expected.set(decoded.subarray(id * dim, (id + 1) * dim), t * dim));
      assertBitwise(backend.embed(ids, weight), expected, 'embed');
    });
  }

  test('gatherRows returns the named rows bitwise', () => {
    const backend = makeBackend();
    assert.ok(backend.gatherRows, `${backend.name} has no gatherRows`);
    const x = new TestRandom(43).floats(6 * 5);
    const rows = Int32Array.from([5, 0, 3, 3]);
    const expected = new Float32Array(rows.length * 5);
    rows.forEach((row, i) => expected.set(x.subarray(row * 5, row * 5 + 5), i * 5));
    assertBitwise(backend.gatherRows(x, rows, 5), expected, 'gatherRows');
  });

  test('embed rejects a token id outside the table with a coded error', () => {
    const backend = makeBackend();
    const { weight } = randomWeight(backend, 'f32', 4, 8, new TestRandom(42));
    assert.throws(() => backend.embed(Int32Array.from([4]), weight), (e: unknown) => isTesseraError(e));
  });

  test('loadWeight rejects bytes of the wrong size with a coded error', () => {
    const backend = makeBackend();
    assert.throws(() => backend.loadWeight('f32', [4, 8], new Uint8Array(100)), (e: unknown) => isTesseraError(e));
  });
}

function pointwiseCases(makeBackend: () => Backend): void {
  test('rmsNorm matches the float64 formula on odd row counts', () => {
    const backend = makeBackend();
    const random = new TestRandom(51);
    for (const [rows, dim] of [[1, 64], [5, 96], [3, 288]]) {
      const x = random.floats(rows * dim, 3);
      const weight = random.floats(dim);
      const actual = backend.rmsNorm(x, f32Weight(backend, weight), rows, 1e-5);
      assertClose(actual, naiveRmsNorm(x, weight, rows, 1e-5), { atol: 1e-6, rtol: 1e-5 }, `rmsNorm [${rows},${dim}]`);
    }
  });

  test('siluMul, addBias and addInPlace match their definitions', () => {
    const backend = makeBackend();
    const random = new TestRandom(52);
    const gate = random.floats(77, 6);
    const up = random.floats(77);
    const silu = Float64Array.from(gate, (g, i) => (g / (1 + Math.exp(-g))) * up[i]);
    assertClose(backend.siluMul(gate, up), silu, { atol: 1e-7, rtol: 1e-6 }, 'siluMul');
    const x = random.floats(3 * 11);
    const bias = random.floats(11);
    const biased = x.map((v, i) => Math.fround(v + bias[i % 11]));
    backend.addBias(x, f32Weight(backend, bias), 3);
    assertBitwise(x, biased, 'addBias');
    const b = random.floats(x.length);
    const sum = x.map((v, i) => Math.fround(v + b[i]));
    backend.addInPlace(x, b);
    assertBitwise(x, sum, 'addInPlace');
  });

  for (const style of ['adjacent', 'halves'] as const) {
    for (const ropeDims of [16, 8]) {
      test(`rope ${style} over ${ropeDims} of 16 dims matches the rotation; other dims untouched`, () => {
        const backend = makeBackend();
        const random = new TestRandom(53);
        const [numTokens, numHeads, headDim] = [5, 3, 16];
        const x = random.floats(numTokens * numHeads * headDim);
        const positions = Int32Array.from([0, 1, 7, 300, 4095]);
        const inverseFrequencies = Float32Array.from({ length: ropeDims / 2 }, (_, i) => 10000 ** ((-2 * i) / ropeDims));
        const expected = naiveRope(x, positions, numHeads, headDim, ropeDims, style, inverseFrequencies);
        const rotated = x.slice();
        backend.rope({ x: rotated, positions, numHeads, headDim, ropeDims, style, inverseFrequencies });
        assertClose(rotated, expected, { atol: 1e-6, rtol: 1e-6 }, `rope ${style}`);
        for (let i = 0; i < x.length; i++) {
          if (i % headDim >= ropeDims) assert.equal(rotated[i], x[i], `dim ${i % headDim} must not rotate`);
        }
      });
    }
  }
}

interface AttentionCase {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  seqLen: number;
}

function attentionCases(makeBackend: () => Backend): void {
  test('writeKv puts each position in its physical block and slot', () => {
    const backend = makeBackend();
    const pool = makePool(4, 2, 2, 3);
    const blockTable = Int32Array.from([2, 0, 3]);
    const values = Float32Array.from({ length: 2 * 6 }, (_, i) => i + 1);
    backend.writeKv(pool, blockTable, Int32Array.from([1, 4]), values);
    // position 1 → block 2 slot 1; position 4 → block 3 slot 0; a slot is numKvHeads·headDim = 6 values.
    assert.deepEqual([...pool.data.subarray((2 * 2 + 1) * 6, (2 * 2 + 2) * 6)], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...pool.data.subarray(3 * 2 * 6, 3 * 2 * 6 + 6)], [7, 8, 9, 10, 11, 12]);
    assert.equal([...pool.data].filter((v) => v !== 0).length, 12);
  });

  test('writeKv to an f16 pool rounds each value to nearest even (ties, subnormals, overflow, NaN), as f32ToF16', () => {
    const backend = makeBackend();
    // 40 values a row, so vector conversions see whole groups and a tail.
    const special = [
      1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519.99, 65520, 1e6, -1e6, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 3 * 2 ** -26,
      2 ** -14 - 2 ** -25, 1e-9, -0, 0, Infinity, -Infinity, NaN, -(2 ** -24) * 1.5, 0.1, -0.3, 1e-40,
    ];
    const random = new TestRandom(57);
    const values = Float32Array.from({ length: 3 * 40 }, (_, i) => (i < special.length ? special[i] : random.floats(1, 4)[0]));
    const pool = makePool(2, 2, 2, 20, 'f16');
    backend.writeKv(pool, Int32Array.from([1, 0]), Int32Array.from([0, 1, 2]), values);
    // Position p is in logical block p >> 1 (physical 1 then 0), slot p & 1; a slot is 40 values.
    const slots = [2, 3, 0];
    slots.forEach((slot, t) => {
      for (let i = 0; i < 40; i++) {
        const expected = f32ToF16(values[t * 40 + i]);
        assert.equal(pool.data[slot * 40 + i], expected, `value ${values[t * 40 + i]} → 0x${expected.toString(16)}`);
      }
    });
  });

  const cases: AttentionCase[] = [
    { numHeads: 4, numKvHeads: 4, headDim: 16, blockSize: 4, seqLen: 23 },
    { numHeads: 6, numKvHeads: 2, headDim: 8, blockSize: 8, seqLen: 37 },
    { numHeads: 8, numKvHeads: 1, headDim: 32, blockSize: 16, seqLen: 40 },
  ];
  for (const shape of cases) {
    const label = `${shape.numHeads}/${shape.numKvHeads} heads, block ${shape.blockSize}, ${shape.seqLen} tokens`;
    test(`attention (${label}) over a shuffled block table matches softmax attention; prefill, chunks and decode agree bitwise`, () => {
      const backend = makeBackend();
      const f32 = attentionScenario(backend, shape, 'f32', new TestRandom(60 + shape.seqLen));
      const f16 = attentionScenario(backend, shape, 'f16', new TestRandom(60 + shape.seqLen));
      // Keys and values rounded to half (relative error ≤ 2^-11) move the outputs (mixes of values of magnitude ≤ 1) by about that much.
      assertClose(f16.prefill, f32.prefill, { atol: 5e-3, rtol: 5e-3 }, 'f16 KV vs f32 KV');
      // An f16 cache gives the bits of an f32 cache holding the widened halves.
      assertBitwise(f16.prefill, f16.fromWidened, 'f16 KV vs f32 KV of the rounded values');
    });
  }
}

/** The scenario on pools of `dtype` → its prefill output, and what f32 pools of the same (rounded) values give. */
function attentionScenario(backend: Backend, shape: AttentionCase, dtype: KvDtype, random: TestRandom): { prefill: Float32Array; fromWidened: Float32Array } {
  const { numHeads, numKvHeads, headDim, blockSize, seqLen } = shape;
  const numBlocks = Math.ceil(seqLen / blockSize) + 3;
  const blockTable = random.permutation(numBlocks).subarray(0, Math.ceil(seqLen / blockSize));
  const query = random.floats(seqLen * numHeads * headDim, 2);
  const keysIn = random.floats(seqLen * numKvHeads * headDim, 2);
  const valuesIn = random.floats(seqLen * numKvHeads * headDim);
  // What the cache holds: the values themselves, or rounded to half.
  const [keys, values] = dtype === 'f16' ? [roundToF16(keysIn), roundToF16(valuesIn)] : [keysIn, valuesIn];
  const scale = 1 / Math.sqrt(headDim);
  const rowQ = numHeads * headDim;
  const rowKv = numKvHeads * headDim;

  /** Runs the sequence in calls covering [start, end) each; → [seqLen, numHeads, headDim]. */
  const run = (chunks: [number, number][], poolDtype = dtype, keys = keysIn, values = valuesIn): Float32Array => {
    const keyCache = makePool(numBlocks, blockSize, numKvHeads, headDim, poolDtype);
    const valueCache = makePool(numBlocks, blockSize, numKvHeads, headDim, poolDtype);
    const out = new Float32Array(seqLen * rowQ);
    for (const [start, end] of chunks) {
      const positions = Int32Array.from({ length: end - start }, (_, i) => start + i);
      backend.writeKv(keyCache, blockTable, positions, keys.subarray(start * rowKv, end * rowKv));
      backend.writeKv(valueCache, blockTable, positions, values.subarray(start * rowKv, end * rowKv));
      const args = { query: query.subarray(start * rowQ, end * rowQ), keyCache, valueCache, blockTable, positions, numHeads, numKvHeads, headDim, scale };
      out.set(backend.attention(args), start * rowQ);
    }
    return out;
  };

  const prefill = run([[0, seqLen]]);
  const positions = Int32Array.from({ length: seqLen }, (_, i) => i);
  const expected = naiveAttention(query, keys, values, positions, numHeads, numKvHeads, headDim, scale);
  assertClose(prefill, expected, { atol: 1e-5, rtol: 1e-5 }, 'prefill vs softmax');
  const third = Math.floor(seqLen / 3);
  assertBitwise(run([[0, third], [third, third + 5], [third + 5, seqLen]]), prefill, 'chunked prefill');
  assertBitwise(run(Array.from({ length: seqLen }, (_, i): [number, number] => [i, i + 1])), prefill, 'token by token');
  return { prefill, fromWidened: run([[0, seqLen]], 'f32', keys, values) };
}
