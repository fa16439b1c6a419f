/**
 * MeshRowSink: rows go to the mesh as kv-writes with their heads, bytes and
 * the generation of the first write; once the mesh has re-sharded since (or
 * refused a write) the sink says its rows are not intact.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TransferId } from '../engine/kv-messages.js';
import { MeshRowSink, type KvWrite, type KvWriter } from './mesh-kv-import.js';

class FakeMesh implements KvWriter {
  generation = 3;
  serving = true;
  readonly writes: { write: KvWrite; body: Uint8Array; generation: number | undefined }[] = [];

  writeKv(write: KvWrite, body: Uint8Array, generation?: number): boolean {
    this.writes.push({ write, body, generation });
    return this.serving && generation === this.generation;
  }
}

function rows(layer: number, headStart: number) {
  const keys = Float32Array.of(1, 2, 3, 4);
  const values = Float32Array.of(5, 6, 7, 8);
  return { transfer: 't' as TransferId, layer, from: 2, count: 1, headStart, headCount: 2, keys, values };
}

test('each run goes to the mesh as one kv-write: its layer, positions, heads and dtype, keys then values, on the first write\'s generation', () => {
  const mesh = new FakeMesh();
  const sink = new MeshRowSink(mesh, { numBlocks: 8, blockSize: 16 });
  sink.write(rows(1, 2), Int32Array.of(5, 6));
  const [sent] = mesh.writes;
  assert.deepEqual(sent.write, { pool: { numBlocks: 8, blockSize: 16 }, blockTable: [5, 6], layer: 1, from: 2, count: 1, heads: [2, 4], dtype: 'f32' });
  assert.deepEqual(Array.from(new Float32Array(sent.body.buffer)), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(sent.generation, 3);
  assert.equal(sink.intact, true);
});

test('a sink whose mesh re-sharded since its first write, or refused a write, is not intact', () => {
  const mesh = new FakeMesh();
  const moved = new MeshRowSink(mesh, { numBlocks: 8, blockSize: 16 });
  moved.write(rows(0, 0), Int32Array.of(0));
  mesh.generation = 4;
  assert.equal(moved.intact, false, 'the rows went to generation 3');
  moved.write(rows(1, 0), Int32Array.of(0));
  assert.equal(mesh.writes[1].generation, 3, 'later rows name the first write\'s generation, which the mesh refuses');
  const fresh = new MeshRowSink(mesh, { numBlocks: 8, blockSize: 16 });
  assert.equal(fresh.intact, true, 'nothing written yet');
  mesh.serving = false;
  fresh.write(rows(0, 0), Int32Array.of(0));
  assert.equal(fresh.intact, false, 'a write the mesh could not take');
});
