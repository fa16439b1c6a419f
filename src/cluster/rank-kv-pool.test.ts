/**
 * A rank mirrors one KV pool, the driver's, for its own layers only: a step attends and writes through
 * the block ids it names, and a step that names another pool, a block outside
 * the pool or a position its block table does not reach is refused with a
 * code, before any rank sends or receives (the ranks stay usable).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTesseraError } from '../core/errors.js';
import { Engine } from '../engine/engine.js';
import { fixture } from '../testing/fixtures.js';
import { localMesh } from './local-mesh.case.js';
import type { StepRequest } from './rank-runner.js';

const refused = (error: unknown): boolean => isTesseraError(error) && error.code === 'TESSERA_ERR_INVALID_ARGUMENT';

test('a tp 2 × pp 2 mesh writes through the block table it is given and refuses bad tables and other pools', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const prompt = [1, 403, 407, 261];
  const expected = await (await Engine.open(path)).logits([...prompt, 300]);
  const vocab = expected.length / (prompt.length + 1);
  const mesh = localMesh(path, { tp: 2, pp: 2 });
  const pool = { numBlocks: 4, blockSize: 16 };
  const prefill: StepRequest = { blockTable: Int32Array.of(2), ids: Int32Array.from(prompt), positions: Int32Array.from(prompt.keys()), rows: 'all' };
  assert.deepEqual(await mesh.step(pool, prefill), expected.subarray(0, prompt.length * vocab));

  await assert.rejects(mesh.step(pool, { ...prefill, blockTable: Int32Array.of(4) }), refused, 'a block beyond the pool');
  await assert.rejects(mesh.step(pool, { ...prefill, blockTable: Int32Array.of(-1) }), refused, 'a negative block');
  await assert.rejects(mesh.step(pool, { ...prefill, positions: Int32Array.of(14, 15, 16, 17) }), refused, 'a position past the table');
  await assert.rejects(mesh.step({ numBlocks: 8, blockSize: 16 }, prefill), refused, 'another block count');
  await assert.rejects(mesh.step({ numBlocks: 4, blockSize: 8 }, prefill), refused, 'another block size');
  await assert.rejects(mesh.step({ numBlocks: 0, blockSize: 16 }, prefill), refused, 'an empty pool');

  // Nothing refused touched the pool: the sequence decodes on from block 2.
  const decode = await mesh.step(pool, { blockTable: Int32Array.of(2), ids: Int32Array.of(300), positions: Int32Array.of(prompt.length), rows: 'last' });
  assert.deepEqual(decode, expected.subarray(prompt.length * vocab));

  // Each rank holds KV for its own stage's layers only (stories260K's 5 layers: [0, 3) and [3, 5)).
  const layersWithPools = mesh.runners.map((runner) => Object.keys(runner.kv?.keys ?? []).map(Number));
  assert.deepEqual(layersWithPools, [[0, 1, 2], [0, 1, 2], [3, 4], [3, 4]]);
});
