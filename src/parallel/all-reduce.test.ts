import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allReduceSegmented, scratchFloats } from './all-reduce.js';
import { Communicator } from './collectives.js';
import { inProcessMesh } from './in-process-transport.js';
import { treeSum, treeSumInPlace } from './reduction-tree.js';
import { socketMesh } from './socket-mesh.case.js';
import type { Transport } from './transport.js';

describe('treeSumInPlace', () => {
  it('equals the allocating tree sum bit for bit, for every group size and kept part', () => {
    for (let size = 1; size <= 8; size++) {
      const parts = Array.from({ length: size }, (_, i) => awkwardFloats(257, i + 1));
      const expected = treeSum(parts, 0, size);
      for (let keep = 0; keep < size; keep++) {
        const copies = parts.map((part) => part.slice());
        const sum = treeSumInPlace(copies, 0, size, keep);
        assert.equal(sum, copies[keep]);
        assert.deepEqual(sum, expected);
      }
    }
  });
});

describe('segmented all-reduce', () => {
  for (const size of [2, 3, 4]) {
    it(`over ${size} ranks gives every rank the tree sum in place, for lengths not divisible by ranks or segment`, async () => {
      const mesh = inProcessMesh(size);
      for (const [length, segment] of [[1, 1], [2, 1], [5, 2], [7, 3], [1_000, 7], [4_099, 1_024], [65_537, 65_536]]) {
        const inputs = mesh.map((t) => awkwardFloats(length, 10 * t.rank + length));
        const expected = treeSum(inputs.map((input) => input.slice()), 0, size);
        await Promise.all(
          mesh.map((transport) => {
            const communicator = new Communicator(transport);
            const scratch = new Float32Array(scratchFloats(length, size, transport.rank, segment));
            return allReduceSegmented(communicator, inputs[transport.rank], scratch, segment);
          }),
        );
        for (const input of inputs) assert.deepEqual(input, expected, `length ${length}, segment ${segment}`);
      }
    });
  }
});

describe('Communicator.allReduce over Unix sockets', () => {
  it('sums vectors of every path (one round, one segment, many segments with a short last one) in place, call after call', async () => {
    await withMesh(await socketMesh('unix', 4), async (transports) => {
      const communicators = transports.map((t) => new Communicator(t));
      // Lengths at the path edges, and a long one whose scratch is reused by the shorter ones after it.
      for (const length of [1, 3, 16_384, 16_385, 262_144, 1_048_579, 262_147, 100_003]) {
        const inputs = transports.map((t) => awkwardFloats(length, 3 * t.rank + length));
        const expected = treeSum(inputs.map((input) => input.slice()), 0, 4);
        const sums = await Promise.all(communicators.map((c, rank) => c.allReduce(inputs[rank])));
        sums.forEach((sum, rank) => {
          assert.equal(sum, inputs[rank], 'the sum is written over the input');
          assert.deepEqual(sum, expected, `length ${length}`);
        });
      }
    });
  });

  it('gives the same bits with 2 ranks as the canonical tree over their partials, at 64 MiB', async () => {
    await withMesh(await socketMesh('unix', 2), async (transports) => {
      const length = 16 * 1024 * 1024 + 1;
      const inputs = transports.map((t) => awkwardFloats(length, t.rank + 1));
      const expected = treeSum(inputs.map((input) => input.slice()), 0, 2);
      const sums = await Promise.all(transports.map((t) => new Communicator(t).allReduce(inputs[t.rank])));
      for (const sum of sums) assert.ok(sum.every((value, i) => Object.is(value, expected[i])));
    });
  });
});

async function withMesh(transports: Transport[], body: (transports: Transport[]) => Promise<void>): Promise<void> {
  try {
    await body(transports);
  } finally {
    await Promise.all(transports.map((t) => t.close()));
  }
}

/** Values of very different magnitudes, so a different summation order changes the bits. */
function awkwardFloats(count: number, seed: number): Float32Array {
  let state = seed * 2654435761;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out[i] = ((state / 2 ** 32) * 2 - 1) * 10 ** ((state % 9) - 4);
  }
  return out;
}
