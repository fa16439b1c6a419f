/**
 * KV links on real sockets in one process: a KvListener (decode side) and
 * a KvSender (prefill side) over TCP and over a Unix domain socket. Rows
 * arrive whole and in order with their bits, the commit is acknowledged
 * with the byte count, a shape mismatch is refused, a link that breaks
 * mid-transfer aborts the transfer on the receiving side, and a probe
 * measures the link.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KvRows, TransferId } from '../engine/kv-messages.js';
import type { KvLinkKind } from './kv-endpoint.js';
import { KvListener, type KvReceiver, type KvShape, type TransferStats } from './kv-listener.js';
import { KvSender } from './kv-sender.js';
import { ShmKvLink } from './shm-kv-link.js';
import { SocketKvLink } from './socket-kv-link.js';
import { createServer, connect, type Socket } from 'node:net';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReceivedFrame } from './kv-link.js';

const SHAPE: KvShape = { numLayers: 2, numKvHeads: 2, headDim: 4, dtype: 'f32' };

function rows(transfer: TransferId, layer: number, from: number, count: number): KvRows {
  const size = count * SHAPE.numKvHeads * SHAPE.headDim;
  const keys = Float32Array.from({ length: size }, (_, i) => layer * 1000 + from + i + 0.25);
  const values = Float32Array.from({ length: size }, (_, i) => -(layer * 1000 + from + i) - 0.5);
  return { transfer, layer, from, count, headStart: 0, headCount: SHAPE.numKvHeads, keys, values };
}

interface TestReceiver extends KvReceiver {
  got: KvRows[];
  committed: Promise<{ ids: number[]; stats: TransferStats }>;
  aborted: Promise<string>;
}

function receiver(): TestReceiver {
  const got: KvRows[] = [];
  let commit!: (value: { ids: number[]; stats: TransferStats }) => void;
  let abort!: (message: string) => void;
  return {
    got,
    committed: new Promise((resolve) => (commit = resolve)),
    aborted: new Promise((resolve) => (abort = resolve)),
    rows: (run) => got.push(run),
    commit: (ids, stats) => commit({ ids, stats }),
    abort: (message) => abort(message),
  };
}

async function roundTrip(kind: KvLinkKind): Promise<void> {
  const listener = await KvListener.start({ host: '127.0.0.1', port: 0, shape: SHAPE });
  const sender = new KvSender(kind);
  try {
    const transfer = `t-${kind}` as TransferId;
    const target = receiver();
    listener.expect(transfer, target);
    const outgoing = sender.start(transfer, listener.endpoints, SHAPE);
    const sent = [rows(transfer, 0, 0, 5), rows(transfer, 1, 0, 5), rows(transfer, 0, 5, 3), rows(transfer, 1, 5, 3)];
    for (const run of sent) outgoing.rows(run);
    const stats = await outgoing.commit([42]);
    const { ids } = await target.committed;
    assert.deepEqual(ids, [42]);
    assert.equal(stats.kind, kind);
    assert.equal(stats.bytes, sent.reduce((sum, run) => sum + run.keys.byteLength + run.values.byteLength, 0));
    assert.equal(target.got.length, sent.length);
    target.got.forEach((run, i) => {
      assert.deepEqual({ ...run, keys: [...run.keys], values: [...run.values] }, { ...sent[i], keys: [...sent[i].keys], values: [...sent[i].values] });
    });
    const probe = await sender.probe(listener.endpoints, 8, 256 * 1024);
    assert.equal(probe.bytes, 8 * 256 * 1024);
    assert.ok(probe.wallMs > 0 && probe.activeMs > 0);
    // On one host the payloads go through the shared-memory ring once both ends have it.
    assert.equal(probe.sharedMemory, kind === 'unix');
  } finally {
    sender.close();
    listener.close();
  }
}

test('rows, commit and ack over TCP', () => roundTrip('tcp'));

test('rows, commit and ack over a Unix domain socket (chosen first on one host)', () => roundTrip('unix'));

test('a transfer of another shape is refused on both sides', async () => {
  const listener = await KvListener.start({ host: '127.0.0.1', port: 0, shape: SHAPE, unix: false });
  const sender = new KvSender('auto');
  try {
    const transfer = 't-shape' as TransferId;
    const target = receiver();
    listener.expect(transfer, target);
    const outgoing = sender.start(transfer, listener.endpoints, { ...SHAPE, dtype: 'f16' });
    const lost = new Promise<Error>((resolve) => outgoing.onLost(resolve));
    assert.match(await target.aborted, /does not match this replica's/);
    assert.match((await lost).message, /refused the KV transfer/);
  } finally {
    sender.close();
    listener.close();
  }
});

test('a link that breaks mid-transfer aborts the transfer on the decode side', async () => {
  const listener = await KvListener.start({ host: '127.0.0.1', port: 0, shape: SHAPE });
  const sender = new KvSender('tcp');
  try {
    const transfer = 't-broken' as TransferId;
    const target = receiver();
    listener.expect(transfer, target);
    const outgoing = sender.start(transfer, listener.endpoints, SHAPE);
    outgoing.rows(rows(transfer, 0, 0, 4));
    while (target.got.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    sender.close(); // the prefill replica's end goes away before the commit
    assert.match(await target.aborted, /KV link .* broke before the transfer finished/);
  } finally {
    listener.close();
  }
});

test('a shared-memory ring: payloads arrive whole and in order, inline when the ring is full, and the ring file is gone once both ends have it', async () => {
  const path = join(tmpdir(), `tessera-kv-test-${process.pid}.sock`);
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const dialed = connect({ path });
  await new Promise((resolve) => dialed.once('connect', resolve));
  const writer = ShmKvLink.dial(new SocketKvLink(dialed, 'unix', 'test'), 64 * 1024);
  const reader = ShmKvLink.accept(new SocketKvLink(await accepted, 'unix', 'test'));
  try {
    const got: ReceivedFrame[] = [];
    reader.onFrame((frame) => got.push(frame));
    while (!writer.sharedMemory) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(readdirSync(existsSync('/dev/shm') ? '/dev/shm' : tmpdir()).filter((name) => name.startsWith(`tessera-kv-ring-${process.pid}-`)), []);
    // 12 payloads of 20 KiB in one go: the 64 KiB ring takes three before any is read back, the rest go inline.
    const payloads = Array.from({ length: 12 }, (_, i) => new Uint8Array(20 * 1024).fill(i + 1));
    payloads.forEach((payload, i) => writer.send({ type: 'probe', probe: `p${i}`, last: false }, [payload.subarray(0, 1000), payload.subarray(1000)]));
    while (got.length < payloads.length) await new Promise((resolve) => setTimeout(resolve, 5));
    got.forEach((frame, i) => {
      assert.deepEqual(frame.header, { type: 'probe', probe: `p${i}`, last: false });
      assert.deepEqual(frame.payload, payloads[i]);
      assert.equal(frame.payload.byteOffset % 8, 0);
    });
    // Read back, the ring has room again.
    writer.send({ type: 'probe', probe: 'again', last: true }, [new Uint8Array(40 * 1024).fill(9)]);
    while (got.length < payloads.length + 1) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(got.at(-1)!.payload, new Uint8Array(40 * 1024).fill(9));
  } finally {
    writer.close();
    reader.close();
    server.close();
  }
});
