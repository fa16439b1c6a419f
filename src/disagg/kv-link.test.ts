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
