/**
 * The one conformance suite every Transport runs (in-process, TCP, Unix):
 * ordering, whole messages of awkward sizes, both directions at once, the
 * collectives on top (all-reduce bit-equal to an unsplit canonical matmul),
 * and a lost peer failing receives instead of hanging.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { matmulCanonical } from '../backend/reference/matmul.js';
import { Communicator, treeSum } from './collectives.js';
import { CollectiveGroup } from './collective-group.js';
import type { Transport } from './transport.js';

export type MeshFactory = (size: number) => Promise<Transport[]>;

export function transportSuite(name: string, makeMesh: MeshFactory): void {
  describe(`Transport conformance: ${name}`, () => {
    it('delivers whole messages of every size, in order, per pair', async () => {
      await withMesh(makeMesh, 2, async ([a, b]) => {
        const sizes = [0, 1, 3, 4, 65_537, 3 * 1024 * 1024 + 5];
        const sent = sizes.map((size, i) => patterned(size, i));
        const sending = Promise.all(sent.map((message) => a.send(1, message)));
        for (const expected of sent) assert.deepEqual(await b.receive(0), expected);
        await sending;
      });
    });

    it('receives into named buffers, in order with plain receives, and refuses a buffer of the wrong length', async () => {
      await withMesh(makeMesh, 2, async ([a, b]) => {
        const sizes = [5, 3 * 1024 * 1024 + 1, 0, 70_000, 9];
        const sent = sizes.map((size, i) => patterned(size, i + 3));
        // Receives posted before anything is sent (as the all-reduce does), mixing both kinds.
        const into = sizes.map((size, i) => (i % 2 === 0 ? new Uint8Array(size) : undefined));
        const received = sent.map((_, i) => (into[i] ? b.receiveInto(0, into[i]!).then(() => into[i]!) : b.receive(0)));
        const wrong = b.receiveInto(0, new Uint8Array(2));
        await Promise.all([...sent, Uint8Array.of(1, 2, 3)].map((message) => a.send(1, message)));
        assert.deepEqual(await Promise.all(received), sent);
        // In one process a wrong length is a bug (INTERNAL); from a socket it is the peer's frame (PROTOCOL, and the link is dropped).
        await assert.rejects(wrong, (error: Error & { code?: string }) => error.code === 'TESSERA_ERR_INTERNAL' || error.code === 'TESSERA_ERR_PROTOCOL');
      });
    });

    it('carries large messages both ways at once without deadlock', async () => {
      await withMesh(makeMesh, 2, async ([a, b]) => {
        const big = 8 * 1024 * 1024;
        const [fromB, fromA] = await Promise.all([
          a.send(1, patterned(big, 1)).then(() => a.receive(1)),
          b.send(0, patterned(big, 2)).then(() => b.receive(0)),
        ]);
        assert.deepEqual(fromB, patterned(big, 2));
        assert.deepEqual(fromA, patterned(big, 1));
      });
    });

    for (const size of [2, 4]) {
      it(`all-reduce over ${size} ranks of row-parallel partials equals the unsplit matmul bit for bit`, async () => {
        await withMesh(makeMesh, size, async (transports) => {
          const K = 32 * 8;
          const M = 5;
          const numTokens = 3;
          const x = randomFloats(numTokens * K, 1);
          const w = randomFloats(M * K, 2);
          const whole = matmulCanonical(x, w, numTokens, M, K, 32);
          const sums = await Promise.all(
            transports.map((transport) => {
              const [start, end] = [(K * transport.rank) / size, (K * (transport.rank + 1)) / size];
              const partial = matmulCanonical(columns(x, numTokens, K, start, end), columns(w, M, K, start, end), numTokens, M, end - start, 32);
              return new Communicator(transport).allReduce(partial);
            }),
          );
          for (const sum of sums) assert.deepEqual(sum, whole);
        });
      });
    }

    it('all-reduces short (one round), medium (reduce-scatter + all-gather) and long (segmented) vectors to the same tree sum', async () => {
      await withMesh(makeMesh, 4, async (transports) => {
        for (const length of [1_000, 100_000, 600_001]) {
          const inputs = transports.map((transport) => randomFloats(length, 10 + transport.rank));
          const expected = treeSum(inputs, 0, 4);
          const sums = await Promise.all(transports.map((transport) => new Communicator(transport).allReduce(inputs[transport.rank])));
          for (const sum of sums) assert.deepEqual(sum, expected);
        }
      });
    });

    it('all-gathers, gathers uneven column slices, broadcasts, all-to-alls and reduce-scatters', async () => {
      await withMesh(makeMesh, 4, async (transports) => {
        const results = await Promise.all(
          transports.map(async (transport) => {
            const communicator = new Communicator(transport);
            const r = transport.rank;
            const gathered = await communicator.allGather(Uint8Array.of(r, r));
            const columns = await new CollectiveGroup(communicator).allGatherColumns(Float32Array.from({ length: 2 * (r + 1) }, (_, i) => r * 100 + i), 2);
            const broadcast = await communicator.broadcast(Uint8Array.of(7, 7, 7), 2);
            const exchanged = await communicator.allToAll(Array.from({ length: 4 }, (_, to) => Uint8Array.of(r, to)));
            const scattered = await communicator.reduceScatter(Float32Array.from({ length: 8 }, (_, i) => i + r));
            return { gathered, columns, broadcast, exchanged, scattered };
          }),
        );
        results.forEach((result, r) => {
          assert.deepEqual(result.gathered, [0, 1, 2, 3].map((i) => Uint8Array.of(i, i)));
          // Row 0 then row 1 of widths 1, 2, 3, 4.
          assert.deepEqual(Array.from(result.columns), [0, 100, 101, 200, 201, 202, 300, 301, 302, 303, 1, 102, 103, 203, 204, 205, 304, 305, 306, 307]);
          assert.deepEqual(result.broadcast, Uint8Array.of(7, 7, 7));
          assert.deepEqual(result.exchanged, [0, 1, 2, 3].map((from) => Uint8Array.of(from, r)));
          assert.deepEqual(Array.from(result.scattered), [2 * r, 2 * r + 1].map((i) => 4 * i + 6));
        });
      });
    });

    it('fails receives from a peer that went away with TESSERA_ERR_RANK_LOST', async () => {
      await withMesh(makeMesh, 2, async ([a, b]) => {
        const pending = a.receive(1);
        await b.close();
        await assert.rejects(pending, { code: 'TESSERA_ERR_RANK_LOST' });
        await assert.rejects(a.receive(1), { code: 'TESSERA_ERR_RANK_LOST' });
      });
    });

    it('sums in the canonical tree order, not left to right', () => {
      const parts = [1e8, 1, -1e8, 1].map((v) => Float32Array.of(v));
      // ((1e8 + 1) + (-1e8 + 1)) in float32 is 0, (((1e8 + 1) - 1e8) + 1) would be 1.
      assert.equal(treeSum(parts, 0, 4)[0], Math.fround(Math.fround(1e8 + 1) + Math.fround(-1e8 + 1)));
    });
  });
}

async function withMesh(makeMesh: MeshFactory, size: number, body: (transports: Transport[]) => Promise<void>): Promise<void> {
  const transports = await makeMesh(size);
  try {
    await body(transports);
  } finally {
    await Promise.all(transports.map((t) => t.close()));
  }
}

function patterned(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
}

function randomFloats(count: number, seed: number): Float32Array {
  let state = seed * 2654435761;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out[i] = (state / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** Columns [start, end) of a [rows, cols] matrix. */
function columns(values: Float32Array, rows: number, cols: number, start: number, end: number): Float32Array {
  const out = new Float32Array(rows * (end - start));
  for (let row = 0; row < rows; row++) out.set(values.subarray(row * cols + start, row * cols + end), row * (end - start));
  return out;
}
