/**
 * Shared rows (native/src/comm/row-sharing.cc) between two ranks on their
 * own threads, each holding an overlapping range of a q8_0 weight's rows:
 * every rank gets every row with the bits of one whole matmul (and of
 * silu(gate)·up), whatever the split; a rank that arrives late finds the
 * rows it shares already taken by the other; token counts above what one
 * area half holds go in several rounds.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { loadNativeAddon } from '../backend/native/native-addon.js';
import { loadNativeComm } from './native-comm.js';
import { shmFolder } from './shm-segment.js';

const ROWS = 1024;
const COLS = 256;
const ROW_BYTES = (COLS / 32) * 34;
/** An area of 64 KiB: halves of 8,192 floats, 8 tokens of 1,024 rows a round. */
const AREA = 65536;
const Q8_0 = 3;

/** One rank: its rows of the weights, a mesh with the peer, then shareRows as `workerData.calls` says. */
const RANK = `
const { parentPort, workerData } = require('node:worker_threads');
const addon = require(workerData.addon);
const { rank, path, held, weights, x, numTokens, gated, delayMs, threads } = workerData;
const { context } = addon.createContext(threads, 'auto');
const rowBytes = ${ROW_BYTES};
const handles = weights.map((bytes) => addon.loadWeight(context, ${Q8_0}, held[1] - held[0], ${COLS}, bytes.subarray(held[0] * rowBytes, held[1] * rowBytes), true));
const mesh = addon.commShmCreate(path, rank, 2, 4096, ${AREA});
addon.commSetStall(mesh, 20000);
parentPort.postMessage({ ready: true });
parentPort.once('message', ({ peerPath }) => {
  try {
    addon.commShmAttach(mesh, 1 - rank, peerPath);
    const group = addon.commGroup(mesh, Int32Array.of(0, 1), 0);
    if (delayMs) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delayMs);
    const out = new Float32Array(numTokens * ${ROWS});
    addon.shareRows(group, context, gated ? handles : handles.slice(0, 1), x, numTokens, held[0], ${ROWS}, out, false);
    const stats = new Float64Array(6);
    addon.commStats(group, stats);
    addon.commShmClose(mesh);
    parentPort.postMessage({ out, bytesSent: stats[3], sharedRows: stats[5] });
  } catch (error) {
    parentPort.postMessage({ error: error.code + ': ' + error.message });
  }
});
`;

const comm = loadNativeComm();
const load = loadNativeAddon();

/** A q8_0 matrix [ROWS, COLS]: random quants, scales f16 in [2^-6, 2^-5). */
function q8Weight(): Uint8Array {
  const bytes = randomBytes(ROWS * ROW_BYTES);
  for (let block = 0; block < bytes.length; block += 34) {
    bytes[block + 1] = 0x24 | (bytes[block + 1]! & 0x03);
  }
  return new Uint8Array(bytes);
}

/** What one process computes: x·Wᵀ, or silu(x·gateᵀ)·(x·upᵀ). */
function expected(weights: Uint8Array[], x: Float32Array, numTokens: number, gated: boolean): Float32Array {
  assert.ok(load.ok);
  const addon = load.addon;
  const { context } = addon.createContext(1, 'auto');
  const products = weights.slice(0, gated ? 2 : 1).map((bytes) => addon.matmul(context, addon.loadWeight(context, Q8_0, ROWS, COLS, bytes, true), x, numTokens, false, new Float32Array(numTokens * ROWS)));
  return gated ? addon.siluMul(context, products[0]!, products[1]!, new Float32Array(numTokens * ROWS)) : products[0]!;
}

interface RankResult {
  out: Float32Array;
  bytesSent: number;
  sharedRows: number;
}

async function share(options: { held: [number, number][]; numTokens: number; gated: boolean; delayMs?: [number, number]; threads?: number }): Promise<{ results: RankResult[]; want: Float32Array }> {
  assert.ok(load.ok);
  const weights = [q8Weight(), q8Weight()];
  const x = Float32Array.from({ length: options.numTokens * COLS }, () => Math.random() * 2 - 1);
  const paths = [0, 1].map(() => join(shmFolder(), `tessera-shm-${process.pid}-${randomBytes(6).toString('hex')}`));
  const workers = [0, 1].map((rank) => new Worker(RANK, { eval: true, workerData: { addon: load.path, rank, path: paths[rank], held: options.held[rank], weights, x, numTokens: options.numTokens, gated: options.gated, delayMs: options.delayMs?.[rank] ?? 0, threads: options.threads ?? 1 } }));
  const next = (worker: Worker) => new Promise<Record<string, unknown>>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  try {
    await Promise.all(workers.map(next));
    const replies = workers.map(next);
    workers.forEach((worker, rank) => worker.postMessage({ peerPath: paths[1 - rank] }));
    const done = await Promise.all(replies);
    for (const result of done) assert.equal(result.error, undefined);
    return { results: done as unknown as RankResult[], want: expected(weights, x, options.numTokens, options.gated) };
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

const bits = (values: Float32Array): Buffer => Buffer.from(values.buffer, values.byteOffset, values.byteLength);
const OVERLAPPING: [number, number][] = [[0, 768], [256, ROWS]];

test('two ranks sharing rows each get every row with the bits of one matmul, plain and silu(gate)·up', { skip: !comm && 'needs the native addon', timeout: 120_000 }, async () => {
  for (const gated of [false, true]) {
    for (const numTokens of [1, 3]) {
      const { results, want } = await share({ held: OVERLAPPING, numTokens, gated });
      for (const [rank, result] of results.entries()) assert.ok(bits(result.out).equals(bits(want)), `rank ${rank}, ${numTokens} tokens, gated ${gated}`);
      // Between them the two ranks computed every row once.
      assert.equal(results[0]!.bytesSent + results[1]!.bytesSent, numTokens * ROWS * 4);
    }
  }
});

test('a rank that arrives late finds the shared rows taken: the other computed every row it holds', { skip: !comm && 'needs the native addon', timeout: 120_000 }, async () => {
  const { results, want } = await share({ held: OVERLAPPING, numTokens: 2, gated: true, delayMs: [0, 300] });
  for (const result of results) assert.ok(bits(result.out).equals(bits(want)));
  assert.equal(results[0]!.bytesSent, 2 * 768 * 4, 'rank 0 computed rows [0, 768)');
  assert.equal(results[1]!.bytesSent, 2 * 256 * 4, 'rank 1 computed only what rank 0 does not hold');
  assert.deepEqual(results.map((result) => result.sharedRows), [768, 256], 'the counter of rows computed (profile spans) agrees');
  const mirrored = await share({ held: OVERLAPPING, numTokens: 2, gated: false, delayMs: [300, 0] });
  assert.equal(mirrored.results[1]!.bytesSent, 2 * 768 * 4, 'rank 1 computed rows [256, 1024)');
});

test('more tokens than one area half holds go in rounds; ranks holding every row, or with two threads each, split them too', { skip: !comm && 'needs the native addon', timeout: 120_000 }, async () => {
  for (const held of [OVERLAPPING, [[0, ROWS], [0, ROWS]] as [number, number][]]) {
    const { results, want } = await share({ held, numTokens: 20, gated: true });
    for (const result of results) assert.ok(bits(result.out).equals(bits(want)));
  }
  for (const gated of [false, true]) {
    const { results, want } = await share({ held: OVERLAPPING, numTokens: 3, gated, threads: 2 });
    for (const result of results) assert.ok(bits(result.out).equals(bits(want)), `two threads a rank, gated ${gated}`);
  }
});
