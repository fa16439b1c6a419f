/**
 * The raw shared-memory stream (`bench comm`'s and `profile`'s link figure)
 * between two ranks on their own threads, through a ring far smaller than
 * what crosses it, so both ends keep filling, draining and sleeping on
 * their doorbells. A wake-up lost between a rank's last look at the ring
 * and its sleep leaves both ranks asleep for good (it once hung `tessera
 * profile --tp 2`); with a stall limit set, that ends in
 * TESSERA_ERR_RANK_LOST ("no progress") instead, which fails the test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { loadNativeAddon } from '../backend/native/native-addon.js';
import { loadNativeComm } from './native-comm.js';
import { shmFolder } from './shm-segment.js';

const RING = 4096;
const AREA = 65536;
const FRAME = 16384;
const FRAMES = 64;
const ROUNDS = 150;

/** One rank: makes its segment, attaches the peer's, streams ROUNDS times (one way, then both ways), reports its checksum. */
const RANK = `
const { parentPort, workerData } = require('node:worker_threads');
const comm = require(workerData.addon);
const { rank, path } = workerData;
const mesh = comm.commShmCreate(path, rank, 2, ${RING}, ${AREA});
comm.commSetStall(mesh, 5000);
parentPort.postMessage({ ready: true });
parentPort.once('message', ({ peerPath }) => {
  try {
    comm.commShmAttach(mesh, 1 - rank, peerPath);
    const frame = new Uint8Array(${FRAME}).fill(rank + 1);
    const landing = new Uint8Array(${FRAME});
    let sum = 0;
    for (let round = 0; round < ${ROUNDS}; round++) {
      comm.commStream(mesh, 1 - rank, frame, landing, ${FRAMES}, rank === 0, rank === 1);
      comm.commStream(mesh, 1 - rank, frame, landing, ${FRAMES}, true, true);
      sum += landing[round % ${FRAME}];
    }
    comm.commShmClose(mesh);
    parentPort.postMessage({ sum });
  } catch (error) {
    parentPort.postMessage({ error: error.code + ': ' + error.message });
  }
});
`;

const comm = loadNativeComm();

test('two ranks stream frames through a small shared-memory ring, one way and both ways, without losing a wake-up', { skip: !comm && 'needs the native addon', timeout: 120_000 }, async () => {
  const load = loadNativeAddon();
  assert.ok(load.ok);
  const addon = load.path;
  const paths = [0, 1].map(() => join(shmFolder(), `tessera-shm-${process.pid}-${randomBytes(6).toString('hex')}`));
  const workers = [0, 1].map((rank) => new Worker(RANK, { eval: true, workerData: { addon, rank, path: paths[rank] } }));
  const next = (worker: Worker) => new Promise<Record<string, unknown>>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  await Promise.all(workers.map(next));
  const results = workers.map(next);
  workers.forEach((worker, rank) => worker.postMessage({ peerPath: paths[1 - rank] }));
  const done = await Promise.all(results);
  await Promise.all(workers.map((worker) => worker.terminate()));
  for (const result of done) assert.equal(result.error, undefined);
  // Every frame rank 0 sent held 1s, every frame of rank 1 held 2s: what landed is the peer's.
  assert.deepEqual(done.map((result) => result.sum), [2 * ROUNDS, 1 * ROUNDS]);
});
