/**
 * KvReservation.readInto, the decode side of a kept ring: rows of every
 * head are read straight into the held blocks (the views it hands out are
 * the pool's own); a run of some heads (another layout's) goes through a
 * buffer and is re-split; either way the pool ends as write() leaves it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ModelConfig } from '../core/model-config.js';
import { BlockManager } from './block-manager.js';
import type { KvRows, TransferId } from './kv-messages.js';
import { KvReservation } from './kv-reservation.js';

const CONFIG = { numLayers: 2, numKvHeads: 2, headDim: 4 } as ModelConfig;
const transfer = 't-read' as TransferId;

function reserve(): { manager: BlockManager; reservation: KvReservation } {
  const manager = new BlockManager(CONFIG, 8, 4, false);
  const reservation = KvReservation.reserve(manager, [1, 2, 3, 4, 5, 6], CONFIG)!;
  return { manager, reservation };
}

function run(layer: number, headStart: number, headCount: number): KvRows {
  const size = 6 * headCount * CONFIG.headDim;
  const keys = Float32Array.from({ length: size }, (_, i) => layer * 100 + headStart * 10 + i + 0.5);
  const values = Float32Array.from({ length: size }, (_, i) => -(layer * 100 + headStart * 10 + i));
  return { transfer, layer, from: 0, count: 6, headStart, headCount, keys, values };
}

/** readInto with a `read` that fills its targets from the run's bytes, as a ring read would. */
function readInto(reservation: KvReservation, rows: KvRows): number {
  const bytes = Buffer.concat([new Uint8Array(rows.keys.buffer), new Uint8Array(rows.values.buffer)]);
  let targets = 0;
  const { keys: _keys, values: _values, ...header } = rows;
  reservation.readInto({ ...header, dtype: 'f32' }, (views) => {
    let at = 0;
    for (const view of views ?? []) {
      view.set(bytes.subarray(at, at + view.byteLength));
      at += view.byteLength;
    }
    assert.equal(at, bytes.byteLength);
    targets = views?.length ?? 0;
  });
  return targets;
}

test('readInto: whole-head runs land in the pool in one view per block; split runs are re-split; both as write() leaves them', () => {
  const written = reserve();
  const read = reserve();
  for (const layer of [0, 1]) {
    written.reservation.write(run(layer, 0, 2));
    // Positions 0..5 over blocks of 4: two blocks, keys then values.
    assert.equal(readInto(read.reservation, run(layer, 0, 2)), 4);
  }
  assert.ok(read.reservation.complete);
  for (const side of ['keys', 'values'] as const) for (const layer of [0, 1]) assert.deepEqual(read.manager.cache[side][layer].data, written.manager.cache[side][layer].data);
  // Another layout: each layer in two runs of one head each (a tp 2 prefill), through a buffer.
  const split = reserve();
  for (const layer of [0, 1]) for (const head of [0, 1]) {
    assert.equal(readInto(split.reservation, run(layer, head, 1)), 2);
    written.reservation.write(run(layer, head, 1));
  }
  assert.ok(split.reservation.complete);
  for (const side of ['keys', 'values'] as const) for (const layer of [0, 1]) assert.deepEqual(split.manager.cache[side][layer].data, written.manager.cache[side][layer].data);
});
