/**
 * Kept rings on real Unix sockets in one process: each side's KvRings (what
 * the engine thread runs) sits behind a KvRingBridge (the event loop's
 * side), their messages delayed a turn as between threads. The prefill
 * "engine" writes rows from views straight into the ring, the decode
 * "engine" reads them straight into its own buffers: the bits arrive
 * whole, the wire time counts both copies, the commit is acknowledged, and
 * a probe takes the same path. Both ways a thread copies through a ring
 * run: mapped shared by the native addon, and by descriptor (pwritev and
 * preadv, where the addon is missing). (The worker-thread path runs end to
 * end in src/router/pd.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { KvRowsHeader, RingSlot, TransferId } from '../engine/kv-messages.js';
import { KvRingBridge, type RingEngine } from '../serve/kv-ring-bridge.js';
import { KvListener, type FrameCopy, type KvShape } from './kv-listener.js';
import { KvRings, nativeRingMapper, type KvRingFromEngine, type RingMapper } from './kv-ring.js';
import { KvSender } from './kv-sender.js';

const SHAPE: KvShape = { numLayers: 2, numKvHeads: 2, headDim: 4, dtype: 'f32' };
const ROW_BYTES = SHAPE.numKvHeads * SHAPE.headDim * 4;

/** A KvRings as an engine thread would hold it: messages both ways a turn later. */
function engineOf(map: RingMapper): { rings: KvRings; engine: RingEngine } {
  const listeners: ((message: KvRingFromEngine) => void)[] = [];
  const rings = new KvRings((message) => setImmediate(() => listeners.forEach((listener) => listener(message))), map);
  const engine: RingEngine = { sendRing: (message) => setImmediate(() => rings.apply(message)), onRing: (listener) => listeners.push(listener) };
  return { rings, engine };
}

/** Keys then values of `count` rows, as block-sized views (the pool's layout: one view per block touched). */
function rowParts(layer: number, from: number, count: number): Uint8Array[] {
  const keys = Float32Array.from({ length: count * ROW_BYTES / 4 }, (_, i) => layer * 1000 + from + i + 0.25);
  const values = Float32Array.from({ length: count * ROW_BYTES / 4 }, (_, i) => -(layer * 1000 + from + i) - 0.5);
  const split = (data: Float32Array): Uint8Array[] => {
    const bytes = new Uint8Array(data.buffer);
    return [bytes.subarray(0, 3 * ROW_BYTES), bytes.subarray(3 * ROW_BYTES)];
  };
  return [...split(keys), ...split(values)];
}

const sleep = (ms: number): Promise<unknown> => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts the rings a mapper mapped (so a test knows which path it took). */
function counted(map: RingMapper): { map: RingMapper; mapped: () => number } {
  let mapped = 0;
  return {
    map: (fd, bytes, writable) => {
      const area = map(fd, bytes, writable);
      if (area) mapped++;
      return area;
    },
    mapped: () => mapped,
  };
}

const PATHS: { name: string; map: RingMapper; mapped: boolean }[] = [
  { name: 'mapped shared (native addon)', map: nativeRingMapper(), mapped: true },
  { name: 'by descriptor (no addon)', map: () => undefined, mapped: false },
];

for (const path of PATHS) {
  test(`kept rings, ${path.name}: the engines copy rows straight between their buffers and the ring; the wire time counts both copies; a probe goes the same way`, async () => {
    const mapper = counted(path.map);
    const decode = engineOf(mapper.map);
    const prefill = engineOf(mapper.map);
    let listener: KvListener | undefined;
    const decodeBridge = new KvRingBridge(decode.engine, (read) => listener?.ringRead(read));
    const copies: FrameCopy[] = [];
    listener = await KvListener.start({ host: '127.0.0.1', port: 0, shape: SHAPE, keeper: decodeBridge, onCopy: (copy) => copies.push(copy) });
    const sender = new KvSender('unix', new KvRingBridge(prefill.engine, () => undefined));
    try {
      const transfer = 't-kept' as TransferId;
      const got: { rows: KvRowsHeader; bytes: Uint8Array }[] = [];
      let committed!: (ids: number[]) => void;
      const done = new Promise<number[]>((resolve) => (committed = resolve));
      listener.expect(transfer, {
        rows: () => assert.fail('kept rows never arrive inline'),
        ringRows: (rows: KvRowsHeader, slot: RingSlot) => {
          const bytes = new Uint8Array(slot.bytes);
          got.push({ rows, bytes });
          decode.rings.readRows(slot, [bytes.subarray(0, 100), bytes.subarray(100)], transfer);
        },
        commit: (ids) => committed(ids),
        abort: (message) => assert.fail(message),
      });
      const outgoing = sender.start(transfer, listener.endpoints, SHAPE);
      const header = (layer: number, from: number, count: number): KvRowsHeader => ({ transfer, layer, from, count, headStart: 0, headCount: 2, dtype: 'f32' });
      // The sequence names the link's kept ring (the engine has the ring's file a turn later).
      const ring = await sender.ringFor(listener.endpoints);
      assert.ok(ring !== undefined);
      await sleep(20);
      // The writer maps its ring once it has written it through; the reader not before its first read.
      assert.equal(mapper.mapped(), path.mapped ? 1 : 0);
      const sent: Uint8Array[][] = [];
      for (const [layer, from, count] of [[0, 0, 5], [1, 0, 5], [0, 5, 4], [1, 5, 4]]) {
        assert.equal(prefill.rings.writeRows(header(layer, from, count), rowParts(layer, from, count), ring), true);
        sent.push(rowParts(layer, from, count));
      }
      // The engine's handoff follows its frames through the same port: here, a turn later.
      await sleep(20);
      const stats = await outgoing.commit([42]);
      assert.deepEqual(await done, [42]);
      assert.equal(got.length, 4);
      // The decode engine's reads come back after the commit: wait for them (their time is added to the transfer's).
      await sleep(50);
      got.forEach(({ rows, bytes }, i) => {
        assert.deepEqual(rows, header(...([[0, 0, 5], [1, 0, 5], [0, 5, 4], [1, 5, 4]][i] as [number, number, number])));
        assert.deepEqual(bytes, new Uint8Array(Buffer.concat(sent[i])));
      });
      assert.equal(stats.bytes, 2 * 9 * 2 * ROW_BYTES);
      // Each frame's two copies are told once each, with their times; the probe's below are not.
      assert.deepEqual(copies.map((copy) => copy.copy).sort(), ['read', 'read', 'read', 'read', 'write', 'write', 'write', 'write']);
      assert.ok(copies.every((copy) => copy.ms >= 0));
      const probe = await sender.probe(listener.endpoints, 8, 64 * 1024);
      assert.equal(probe.sharedMemory, true);
      assert.equal(probe.bytes, 8 * 64 * 1024);
      assert.ok(probe.activeMs > 0 && probe.wallMs > 0);
      // Both ends of the one link mapped its ring, or neither did.
      assert.equal(mapper.mapped(), path.mapped ? 2 : 0);
      assert.equal(copies.length, 8);
    } finally {
      sender.close();
      listener.close();
    }
  });
}

test('rows of a ring that is gone are refused (never taken as read), and their slot is still given back', () => {
  const posted: KvRingFromEngine[] = [];
  const rings = new KvRings((message) => posted.push(message));
  const slot: RingSlot = { ring: 'gone', offset: 0, bytes: 8, end: 8, writeMs: 0 };
  assert.throws(() => rings.readRows(slot, [new Uint8Array(8)], 't-gone' as TransferId), /is closed/);
  assert.deepEqual(posted.map((message) => message.type), ['read']);
  assert.equal(rings.writeRows({ transfer: 't-gone' as TransferId, layer: 0, from: 0, count: 1, headStart: 0, headCount: 2, dtype: 'f32' }, [new Uint8Array(8)], 'gone'), false);
});

test('a reader does not map its ring before the first read: a ring larger than the tmpfs it sits on cannot end the process with SIGBUS', async (t) => {
  // Root only (CI runs as root): a 1 MiB tmpfs of its own to hold a 4 MiB ring file whose pages nobody has written.
  if (process.getuid?.() !== 0) return t.skip('mounting a tmpfs needs root');
  const folder = mkdtempSync(join(tmpdir(), 'tessera-small-shm-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'none', folder]);
  if (mounted.status !== 0) return t.skip(`mount failed: ${mounted.stderr}`);
  try {
    const handle = await open(join(folder, 'ring'), 'w+', 0o600);
    await handle.truncate(4 * 2 ** 20);
    let mapped = 0;
    const rings = new KvRings(() => undefined, (fd, bytes, writable) => (mapped++, nativeRingMapper()(fd, bytes, writable)));
    // Touching the holes of this file through a mapping raises SIGBUS (tmpfs has no room for them): the reader must not.
    rings.apply({ type: 'reader', ring: 'small', handle, bytes: 4 * 2 ** 20, direct: true });
    assert.equal(mapped, 0);
    rings.apply({ type: 'close', ring: 'small' });
  } finally {
    // The ring's handle closes asynchronously (KvRings.close): until it has, the mount is busy.
    for (let tries = 0; spawnSync('umount', [folder]).status !== 0 && tries < 100; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    rmSync(folder, { recursive: true, force: true });
  }
});
