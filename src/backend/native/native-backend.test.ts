/**
 * The native backend runs the shared conformance suite (with float32
 * activations, the mode whose tolerances the suite states) on every kernel
 * variant this CPU supports. The default 8-bit-activation mode is checked
 * here: within the activation rounding bound of the exact product, and bit
 * for bit the same across batch sizes, K-shards, thread counts and variants.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runBackendSuite } from '../backend.case.js';
import { SUITE_DTYPES, TestRandom, assertBitwise, combineShards, encodeWeight, makePool, naiveMatmul } from '../backend-oracle.js';
import { reductionLeafSize, type Backend } from '../backend.js';
import { DTYPE_LAYOUTS, byteSize, type DType } from '../../core/dtype.js';
import { KV_DTYPES, type KvDtype } from '../../core/kv-dtype.js';
import { loadNativeAddon } from './native-addon.js';
import { NativeBackend, type NativeIsa } from './native-backend.js';

const load = loadNativeAddon();
const QUANTIZED: readonly DType[] = ['q8_0', 'q4_0', 'q4_k', 'q6_k'];

if (!load.ok) {
  test('native backend', { skip: `the addon is not built (${load.reason})` }, () => {});
} else {
  const isas = load.addon.info().supportedIsas as NativeIsa[];
  for (const isa of isas) {
    runBackendSuite(`native ${isa} (float activations)`, () => new NativeBackend({ isa, floatActivations: true }));
  }
  describe('native backend, 8-bit activations', () => {
    accuracyCases();
    determinismCases(isas);
  });
  describe('native backend: loading', () => {
    loadingCases();
  });
}

/** x [N, K] rounded to 8-bit blocks as the kernels do: the bound Σ|w|·d/2 on the error it causes. */
function activationBound(x: Float32Array, w: Float32Array, N: number, M: number, K: number, block: number): Float64Array {
  const bound = new Float64Array(N * M);
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      let sum = 0;
      for (let b = 0; b < K / block; b++) {
        let amax = 0;
        let wabs = 0;
        for (let i = b * block; i < (b + 1) * block; i++) {
          amax = Math.max(amax, Math.abs(x[n * K + i]));
          wabs += Math.abs(w[m * K + i]);
        }
        sum += (wabs * amax) / 127 / 2;
      }
      bound[n * M + m] = sum;
    }
  }
  return bound;
}

function accuracyCases(): void {
  for (const dtype of QUANTIZED) {
    test(`matmul ${dtype} is within the activation rounding bound of the exact product`, () => {
      const backend = new NativeBackend();
      const random = new TestRandom(101);
      const block = DTYPE_LAYOUTS[dtype].blockSize;
      for (const [N, M, blocks] of [[1, 1, 1], [3, 7, 2], [5, 33, 3], [2, 17, 16]]) {
        const K = block * blocks;
        const { bytes, decoded } = encodeWeight(dtype, random.floats(M * K));
        const x = random.floats(N * K, 2);
        const actual = backend.matmul(x, backend.loadWeight(dtype, [M, K], bytes), N);
        const exact = naiveMatmul(x, decoded, N, M, K);
        const bound = activationBound(x, decoded, N, M, K, block);
        for (let i = 0; i < actual.length; i++) {
          const error = Math.abs(actual[i] - exact.value[i]);
          const limit = bound[i] * 1.001 + 1e-6 + 4e-6 * exact.absolute[i];
          assert.ok(error <= limit, `${dtype} [${N},${M},${K}] [${i}]: error ${error} > ${limit}`);
        }
      }
    });
  }
}

function randomWeight(backend: Backend, dtype: DType, M: number, K: number, random: TestRandom) {
  const { bytes } = encodeWeight(dtype, random.floats(M * K));
  return { weight: backend.loadWeight(dtype, [M, K], bytes), bytes };
}

function determinismCases(isas: readonly NativeIsa[]): void {
  for (const dtype of QUANTIZED) {
    test(`matmul ${dtype}: bitwise the same alone and in batches of 1..64`, () => {
      const backend = new NativeBackend();
      const random = new TestRandom(111);
      const [M, K, rows] = [20, reductionLeafSize(dtype) === 32 ? 32 * 19 : 256 * 3, 64];
      const { weight } = randomWeight(backend, dtype, M, K, random);
      const x = random.floats(rows * K, 3);
      const alone = Array.from({ length: rows }, (_, r) => backend.matmul(x.subarray(r * K, (r + 1) * K), weight, 1));
      for (let size = 2; size <= rows; size++) {
        const start = (size * 7) % (rows - size + 1);
        const out = backend.matmul(x.subarray(start * K, (start + size) * K), weight, size);
        for (let r = 0; r < size; r++) assertBitwise(out.subarray(r * M, (r + 1) * M), alone[start + r], `batch ${size} row ${start + r}`);
      }
    });

    test(`matmul ${dtype}: K split in 4 aligned shards, combined by the tree, equals the unsplit result`, () => {
      const backend = new NativeBackend();
      const random = new TestRandom(121);
      const [N, M, K, parts] = [3, 9, reductionLeafSize(dtype) * 8, 4];
      const { weight, bytes } = randomWeight(backend, dtype, M, K, random);
      const x = random.floats(N * K);
      const [partK, rowBytes, partBytes] = [K / parts, byteSize(dtype, K), byteSize(dtype, K / parts)];
      const partials = Array.from({ length: parts }, (_, p) => {
        const shard = new Uint8Array(M * partBytes);
        for (let m = 0; m < M; m++) shard.set(bytes.subarray(m * rowBytes + p * partBytes, m * rowBytes + (p + 1) * partBytes), m * partBytes);
        const shardX = new Float32Array(N * partK);
        for (let n = 0; n < N; n++) shardX.set(x.subarray(n * K + p * partK, n * K + (p + 1) * partK), n * partK);
        return backend.matmul(shardX, backend.loadWeight(dtype, [M, partK], shard), N);
      });
      assertBitwise(combineShards(partials), backend.matmul(x, weight, N), 'shards');
    });
  }

  test('every op gives the same bits on every kernel variant, thread count and weight layout', () => {
    const configs = isas.flatMap((isa) => [
      ...[1, 2, 3].map((threads) => ({ isa, threads, repack: true })),
      { isa, threads: 2, repack: false },
    ]);
    const results = configs.map((options) => runAllOps(new NativeBackend(options)));
    results.forEach((result, c) => {
      const { isa, threads, repack } = configs[c];
      for (const [label, values] of result) assertBitwise(values, results[0].get(label)!, `${isa}×${threads}${repack ? '' : ' unpacked'}: ${label}`);
    });
  });
}

/** One result per op and dtype on fixed random data. */
function runAllOps(backend: NativeBackend): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const random = new TestRandom(131);
  for (const dtype of SUITE_DTYPES) {
    // 37 leaves: whole groups of 16 (AVX-512) and 8 (AVX2) plus a tail.
    const [N, M, K] = [5, 67, reductionLeafSize(dtype) === 32 ? 32 * 37 : 256 * 5];
    const { weight } = randomWeight(backend, dtype, M, K, random);
    out.set(`matmul ${dtype}`, backend.matmul(random.floats(N * K), weight, N));
    out.set(`readRows ${dtype}`, backend.readRows(weight, 15, 33));
  }
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    // A short last leaf, and a row count that is not a whole tile.
    const [N, M, K] = [3, 21, 172];
    const { weight } = randomWeight(backend, dtype, M, K, random);
    out.set(`matmul ${dtype} K=${K}`, backend.matmul(random.floats(N * K), weight, N));
    out.set(`readRows ${dtype} K=${K}`, backend.readRows(weight, 2, 19));
  }
  const x = random.floats(6 * 300, 3);
  out.set('rmsNorm', backend.rmsNorm(x, backend.loadWeight('f32', [300], new Uint8Array(random.floats(300).buffer)), 6, 1e-5));
  const gate = random.floats(100_000, 8);
  out.set('siluMul', backend.siluMul(gate, random.floats(100_000)));
  // Enough tokens that rope splits them over threads.
  const rotated = random.floats(300 * 8 * 40);
  const inverseFrequencies = Float32Array.from({ length: 16 }, (_, i) => 10000 ** (-i / 16));
  backend.rope({ x: rotated, positions: Int32Array.from({ length: 300 }, (_, i) => i * 7), numHeads: 8, headDim: 40, ropeDims: 32, style: 'halves', inverseFrequencies });
  out.set('rope', rotated);
  for (const dtype of KV_DTYPES) kvOps(backend, dtype, random, out);
  return out;
}

/** writeKv, attention and attentionBatch over pools of `dtype` → out (f16 pool bits as floats, exactly). */
function kvOps(backend: NativeBackend, dtype: KvDtype, random: TestRandom, out: Map<string, Float32Array>): void {
  const [numHeads, numKvHeads, headDim, blockSize, seqLen] = [8, 2, 40, 16, 70];
  const keyCache = makePool(6, blockSize, numKvHeads, headDim, dtype);
  const valueCache = makePool(6, blockSize, numKvHeads, headDim, dtype);
  const blockTable = Int32Array.from([4, 1, 5, 0, 2]);
  const positions = Int32Array.from({ length: seqLen }, (_, i) => i);
  const keys = random.floats(seqLen * numKvHeads * headDim, 2);
  // Finite values down to half's subnormals and on rounding ties (infinite keys would make NaN scores).
  keys.set([2 ** -25, 3 * 2 ** -26, 2 ** -24 * 1.5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, -0, 1e-9, 2 ** -14 - 2 ** -25]);
  backend.writeKv(keyCache, blockTable, positions, keys);
  // Past half's range too, in a pool nothing attends over: 37 values a row, so vector groups and a tail.
  const rounding = makePool(2, 2, 1, 37, dtype);
  const wide = random.floats(4 * 37, 1e5);
  wide.set([65504, 65519.99, 65520, -1e6, Infinity, NaN, 1e-40]);
  backend.writeKv(rounding, Int32Array.of(1, 0), Int32Array.of(0, 1, 2, 3), wide);
  out.set(`${dtype} rounding pool`, Float32Array.from(rounding.data));
  backend.writeKv(valueCache, blockTable, positions, random.floats(seqLen * numKvHeads * headDim));
  out.set(`${dtype} key pool`, Float32Array.from(keyCache.data));
  out.set(`${dtype} value pool`, Float32Array.from(valueCache.data));
  const query = random.floats(seqLen * numHeads * headDim, 2);
  out.set(`${dtype} attention`, backend.attention({ query, keyCache, valueCache, blockTable, positions, numHeads, numKvHeads, headDim, scale: 0.15 }));
  // A chunk and five decode tokens of sequences sharing the pools: on one thread a task takes both KV heads of
  // a sequence, on more threads one head each, and tasks differ in size.
  const segments = [
    { start: 0, positions: Int32Array.from([17, 18, 19]), blockTable: Int32Array.from([3, 2]) },
    ...[69, 5, 33, 16, 47].map((position, i) => ({ start: 3 + i, positions: Int32Array.of(position), blockTable })),
  ];
  const batchQuery = query.subarray(0, 8 * numHeads * headDim);
  out.set(`${dtype} attentionBatch`, backend.attentionBatch({ query: batchQuery, keyCache, valueCache, segments, numHeads, numKvHeads, headDim, scale: 0.15 }));
  const batchKeys = random.floats(8 * numKvHeads * headDim, 3);
  backend.writeKvBatch({ keyCache, valueCache, keys: batchKeys, values: batchKeys, segments });
  out.set(`${dtype} key pool after writeKvBatch`, Float32Array.from(keyCache.data));
}

function loadingCases(): void {
  for (const repack of [true, false]) test(`loadWeightFromFile${repack ? ' (repacked)' : ''} reads the tensor at its byte offset and computes like loadWeight`, () => {
    const backend = new NativeBackend({ repack });
    const random = new TestRandom(141);
    const directory = mkdtempSync(join(tmpdir(), 'tessera-native-'));
    try {
      for (const dtype of ['q8_0', 'q4_0', 'q4_k', 'q6_k', 'f16'] as const) {
        const [M, K, offset] = [13, dtype === 'q4_k' || dtype === 'q6_k' ? 512 : 64, 4099];
        const { bytes } = encodeWeight(dtype, random.floats(M * K));
        const file = join(directory, `${dtype}.bin`);
        const contents = new Uint8Array(offset + bytes.length + 7);
        contents.set(bytes, offset);
        writeFileSync(file, contents);
        const mapped = backend.loadWeightFromFile(file, offset, dtype, [M, K]);
        const copied = backend.loadWeight(dtype, [M, K], bytes);
        const x = random.floats(2 * K);
        assertBitwise(backend.matmul(x, mapped, 2), backend.matmul(x, copied, 2), `${dtype} matmul`);
        assertBitwise(backend.readRows(mapped, 2, 5), backend.readRows(copied, 2, 5), `${dtype} rows`);
      }
      assert.throws(() => backend.loadWeightFromFile(join(directory, 'q8_0.bin'), 4099, 'q8_0', [130, 64]), /TESSERA|truncated|shorter/);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });


  test('a weight packed for one kernel variant computes the same bits on another', () => {
    const isas = load.ok ? load.addon.info().supportedIsas : [];
    const random = new TestRandom(151);
    const packer = new NativeBackend({ isa: isas[0] as NativeIsa });
    const other = new NativeBackend({ isa: isas[isas.length - 1] as NativeIsa });
    for (const dtype of ['q8_0', 'q4_0', 'q4_k', 'q6_k'] as const) {
      const K = dtype === 'q4_k' || dtype === 'q6_k' ? 512 : 96;
      const { bytes } = encodeWeight(dtype, random.floats(37 * K));
      const weight = packer.loadWeight(dtype, [37, K], bytes);
      const x = random.floats(3 * K);
      assertBitwise(other.matmul(x, weight, 3), packer.matmul(x, weight, 3), dtype);
      assertBitwise(other.readRows(weight, 5, 9), packer.readRows(weight, 5, 9), `${dtype} rows`);
    }
  });

  test('weights from another backend and bad options are coded errors', () => {
    assert.throws(() => new NativeBackend({ threads: -1 }), (e: unknown) => (e as { code?: string }).code === 'TESSERA_ERR_INVALID_ARGUMENT');
    assert.throws(() => new NativeBackend({ isa: 'neon' as NativeIsa }).name, (e: unknown) => (e as { code?: string }).code === 'TESSERA_ERR_INVALID_ARGUMENT');
    const foreign = { dtype: 'f32' as const, shape: [2, 2] };
    assert.throws(() => new NativeBackend().matmul(new Float32Array(2), foreign, 1), (e: unknown) => (e as { code?: string }).code === 'TESSERA_ERR_INVALID_ARGUMENT');
  });

  test('without the addon, auto falls back to the reference backend and says so once', () => {
    const selector = fileURLToPath(new URL('./select-backend.js', import.meta.url));
    const script = `
      const { createBackend } = await import(${JSON.stringify(selector)});
      const messages = [];
      const names = [createBackend('auto', {}, (m) => messages.push(m)).name, createBackend('auto', {}, (m) => messages.push(m)).name];
      let nativeError = '';
      try { createBackend('native'); } catch (e) { nativeError = e.code; }
      console.log(JSON.stringify({ names, messages, nativeError }));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, TESSERA_NATIVE_ADDON: '/nonexistent/tessera_native.node' },
      encoding: 'utf8',
    });
    assert.equal(child.status, 0, child.stderr);
    const result = JSON.parse(child.stdout) as { names: string[]; messages: string[]; nativeError: string };
    assert.deepEqual(result.names, ['reference', 'reference']);
    assert.equal(result.messages.length, 1);
    assert.match(result.messages[0], /npm run build:native/);
    assert.equal(result.nativeError, 'TESSERA_ERR_BACKEND_UNAVAILABLE');
  });
}
