/**
 * A rank process for the native collective tests, forked with an IPC
 * channel: it opens its endpoint on the plane in TESSERA_TEST_PLANE, sends
 * its address, takes every rank's, connects, runs TESSERA_TEST_SCENARIO and
 * reports over IPC.
 *   exact   — native all-reduce (plain and through partialBuffer), all-gather,
 *             all-to-all and column all-gather, checked bit for bit against
 *             the TypeScript tree sum of every rank's inputs (and the bytes sent);
 *   blocked — rank 0 all-reduces while the others never join (the test kills
 *             them, or aborts, or lets the deadline pass) and reports how the
 *             call ended.
 */
import { Worker } from 'node:worker_threads';
import { treeSum } from '../parallel/reduction-tree.js';
import { NativeCollectiveGroup } from '../parallel/native-group.js';
import { RankEndpoint } from '../parallel/rank-links.js';
import type { MeshAddress } from '../parallel/socket-transport.js';
import type { MeshTransportKind } from '../parallel/transport.js';

const plane = process.env.TESSERA_TEST_PLANE as MeshTransportKind;
const rank = Number(process.env.TESSERA_TEST_RANK);
const size = Number(process.env.TESSERA_TEST_RANKS);
const scenario = process.env.TESSERA_TEST_SCENARIO ?? 'exact';
const report = (message: unknown): void => void process.send?.(message);

const endpoint = await RankEndpoint.open(plane, rank, size);
report({ address: endpoint.address });
const setup = await new Promise<{ addresses: MeshAddress[]; token: string }>((resolve) => process.once('message', (message) => resolve(message as never)));
const links = await endpoint.connect(setup.addresses, setup.token);
const native = links.native;
if (!native) throw new Error(`no native plane over ${plane}`);
const everyone = Array.from({ length: size }, (_, i) => i);
const group = NativeCollectiveGroup.open(native.comm, native.mesh, everyone, rank, 0);

if (scenario === 'exact') {
  try {
    await checkExact();
    report({ ok: true });
  } catch (error) {
    report({ failure: String(error instanceof Error ? error.stack : error), code: (error as { code?: string }).code });
  }
} else {
  report({ ready: true });
  if (rank === 0) {
    if (process.env.TESSERA_TEST_ABORT_MS) abortFromThread(Number(process.env.TESSERA_TEST_ABORT_MS));
    const started = performance.now();
    try {
      group.allReduce(new Float32Array(1000));
      report({ returned: true });
    } catch (error) {
      report({ code: (error as { code?: string }).code, message: String(error), ms: performance.now() - started });
    }
  } else {
    // Never joins: the test kills this rank, or rank 0 is aborted or times out.
    setInterval(() => undefined, 1000);
  }
}
if (scenario === 'exact' || rank === 0) {
  await links.transport.close();
  process.disconnect?.();
}

async function checkExact(): Promise<void> {
  for (const length of [1, 7, 2048, 16 * 1024 + 3, 300_001, 3_000_001]) {
    const inputs = everyone.map((r) => spread(length, 1000 * length + r));
    const expected = treeSum(inputs, 0, size);
    const plain = inputs[rank].slice();
    group.allReduce(plain);
    same(plain, expected, `all-reduce of ${length}`);
    const shared = group.partialBuffer(length);
    if (shared) {
      shared.set(inputs[rank]);
      group.allReduce(shared);
      same(shared, expected, `all-reduce of ${length} in the shared buffer`);
      // The sum is a view of the area; reduced again it is an ordinary array that lies in the area (staged whole, not in pieces).
      group.allReduce(shared);
      same(shared, treeSum(everyone.map(() => expected), 0, size), `all-reduce of ${length} from a view of the shared area`);
    }
  }
  const parts = group.allGather(Uint8Array.from({ length: rank + 2 }, (_, i) => rank * 10 + i));
  for (const [r, part] of parts.entries()) same(part, Uint8Array.from({ length: r + 2 }, (_, i) => r * 10 + i), `all-gather part ${r}`);
  // All-to-all: rank r sends r + j + 1 patterned bytes to j, and 9 MB to its successor (several pieces of the shared area).
  const toEach = everyone.map((j) => Uint8Array.from({ length: j === (rank + 1) % size ? 9_000_001 : rank + j + 1 }, (_, i) => (rank * 31 + j * 7 + i) & 0xff));
  const exchanged = group.allToAll(toEach);
  for (const [r, part] of exchanged.entries()) {
    same(part, Uint8Array.from({ length: rank === (r + 1) % size ? 9_000_001 : r + rank + 1 }, (_, i) => (r * 31 + rank * 7 + i) & 0xff), `all-to-all part from ${r}`);
  }
  // Uneven column slices of 3 rows: rank r holds columns of width r + 1.
  const rows = 3;
  const slice = (r: number): Float32Array => Float32Array.from({ length: rows * (r + 1) }, (_, i) => r * 1000 + i);
  const gathered = await group.allGatherColumns(slice(rank), rows);
  const width = everyone.reduce((sum, r) => sum + r + 1, 0);
  const expected = new Float32Array(rows * width);
  let column = 0;
  for (const r of everyone) {
    for (let row = 0; row < rows; row++) expected.set(slice(r).subarray(row * (r + 1), (row + 1) * (r + 1)), row * width + column);
    column += r + 1;
  }
  same(gathered, expected, 'column all-gather');
}

/** Values of very different magnitudes, so a sum in another order rounds differently. */
function spread(count: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    out[i] = ((state / 2 ** 32) * 2 - 1) * 10 ** ((state >>> 27) % 8);
  }
  return out;
}

function same(actual: ArrayBufferView, expected: ArrayBufferView, what: string): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (!a.equals(b)) throw new Error(`${what}: rank ${rank} got other bits than the TypeScript tree sum`);
}

/** abortCollectives() from another thread of this process, as a heartbeat thread would call it. */
function abortFromThread(afterMs: number): void {
  const module = new URL('../parallel/native-comm.js', import.meta.url).href;
  new Worker(`import(${JSON.stringify(module)}).then((m) => setTimeout(() => m.abortCollectives(), ${afterMs}));`, { eval: true });
}
