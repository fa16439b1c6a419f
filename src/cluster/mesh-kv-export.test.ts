/**
 * MeshKvExporter against a mesh that answers kv-reads with each rank's
 * rows: what a step wrote for an exported sequence goes to the sink as
 * one run per rank and layer, with that rank's heads and the bytes in its
 * reply's order; the next step sends only what is new; long runs take
 * several reads; a rank that leaves its replicated heads to another sends
 * nothing; rows go into the link's ring when it has one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ModelConfig } from '../core/model-config.js';
import { KvCache } from '../engine/kv-cache.js';
import type { KvRingIo, KvRows, KvRowsHeader, TransferId } from '../engine/kv-messages.js';
import type { Sequence } from '../engine/sequence.js';
import type { Batch, SequenceKv } from '../model/batch.js';
import type { KvReadRun } from './control-message.js';
import type { KvRankRows } from './kv-read-pipe.js';
import { MeshKvExporter, readTokensFor, type KvReader } from './mesh-kv-export.js';

const SHAPE = { numLayers: 2, numKvHeads: 4, headDim: 2 };
const T = 't' as TransferId;

/** Two ranks of a tp 2 stage holding every layer; each value says rank, run, layer, keys (0) or values (1) and element. */
class FakeMesh implements KvReader {
  readonly reads: KvReadRun[][] = [];
  constructor(private readonly heads: [number, number][] = [[0, 2], [2, 4]]) {}

  async readKv(_pool: unknown, runs: readonly KvReadRun[]): Promise<KvRankRows[]> {
    this.reads.push([...runs]);
    return this.heads.map((heads, rank) => {
      const values: number[] = [];
      runs.forEach((run, r) => {
        for (let layer = 0; layer < SHAPE.numLayers; layer++) {
          for (const half of [0, 1]) for (let i = 0; i < run.count * (heads[1] - heads[0]) * SHAPE.headDim; i++) values.push(rank * 1000 + r * 100 + layer * 10 + half + i / 1000);
        }
      });
      return { layers: [0, SHAPE.numLayers], heads, dtype: 'f32', body: new Uint8Array(Float32Array.from(values).buffer) };
    });
  }
}

function setup(mesh: KvReader, rings?: KvRingIo): { exporter: MeshKvExporter; sent: KvRows[]; sequence: Sequence; kv: SequenceKv } {
  const cache = new KvCache({ ...SHAPE, numHeads: 4 } as ModelConfig, 64, 16, 'f32', [0, 0]);
  const kv = cache.allocate(1024);
  const sequence = { kv } as unknown as Sequence;
  const sent: KvRows[] = [];
  const exporter = new MeshKvExporter(mesh, SHAPE, (rows) => sent.push(rows), rings);
  return { exporter, sent, sequence, kv };
}

function step(kv: SequenceKv, from: number, count: number): Batch {
  const positions = Int32Array.from({ length: count }, (_, i) => from + i);
  return { ids: new Int32Array(count), segments: [{ kv, start: 0, positions, logits: 'last' }] };
}

test('a step\'s rows of an exported sequence go out per rank and layer with that rank\'s heads; the next step sends only its own', async () => {
  const mesh = new FakeMesh();
  const { exporter, sent, sequence, kv } = setup(mesh);
  exporter.track(T, sequence, 2);
  assert.equal(exporter.active, true);
  await exporter.afterForward(step(kv, 0, 6), 1);
  assert.deepEqual(mesh.reads.map((runs) => runs.map(({ from, count }) => [from, count])), [[[2, 4]]], 'rows below the skip are not read');
  assert.deepEqual(sent.map((rows) => [rows.layer, rows.headStart, rows.headCount, rows.from, rows.count]), [[0, 0, 2, 2, 4], [1, 0, 2, 2, 4], [0, 2, 2, 2, 4], [1, 2, 2, 2, 4]]);
  assert.equal(sent[2].keys[0], 1000 + 0 + 0, 'rank 1, layer 0, keys');
  assert.equal(sent[3].values[0], 1000 + 10 + 1, 'rank 1, layer 1, values');
  assert.equal(sent[1].keys.length, 4 * 2 * 2);
  assert.equal(exporter.sentAll(T, 6), true);
  assert.equal(exporter.sentAll(T, 7), false);
  await exporter.afterForward(step(kv, 6, 1), 1);
  assert.deepEqual(mesh.reads[1], [{ blockTable: Array.from(kv.blockTable), from: 6, count: 1 }]);
  exporter.untrack(T);
  assert.equal(exporter.active, false);
});

test('a run longer than a read takes several; a rank whose replicated heads another sends sends none; a ring takes the rows when there is one', async () => {
  const mesh = new FakeMesh([[0, 4], [0, 0]]);
  const written: KvRowsHeader[] = [];
  const ring: KvRingIo = { writeRows: (header) => (written.push(header), true), readRows: () => undefined };
  const { exporter, sent, sequence, kv } = setup(mesh, ring);
  exporter.track(T, sequence, 0, 'ring-1');
  await exporter.afterForward(step(kv, 0, 600), 1);
  assert.deepEqual(mesh.reads.map((runs) => runs.map(({ from, count }) => [from, count])), [[[0, 512]], [[512, 88]]]);
  assert.equal(sent.length, 0, 'every run went into the ring');
  assert.deepEqual(written.map((header) => [header.layer, header.headStart, header.headCount, header.from]), [[0, 0, 4, 0], [1, 0, 4, 0], [0, 0, 4, 512], [1, 0, 4, 512]]);
});

test('reads of a large model take fewer rows, so that a rank\'s reply stays within 64 MiB', () => {
  assert.equal(readTokensFor(SHAPE), 512);
  // 80 layers × 8 KV heads × 128, f32: 655,360 bytes a token.
  assert.equal(readTokensFor({ numLayers: 80, numKvHeads: 8, headDim: 128 }), 102);
});
