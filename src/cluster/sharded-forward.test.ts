/**
 * Sharded arithmetic in one process: every (tp, pp) of the acceptance list
 * gives logits bit-identical to one unsplit Transformer, and each rank reads
 * only its share of the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../engine/engine.js';
import { fixture } from '../testing/fixtures.js';
import { FIRST_BLOCK, ONE_BLOCK, localMesh } from './local-mesh.case.js';

const SHAPES = [
  { tp: 2, pp: 1 },
  { tp: 4, pp: 1 },
  { tp: 1, pp: 2 },
  { tp: 2, pp: 2 },
];

test('stories260K: prefill and decode logits are bit-identical for every (tp, pp)', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const prompt = [1, 403, 407, 261, 378];
  const engine = await Engine.open(path);
  const expected = await engine.logits([...prompt, 300]);
  const vocab = engine.config.vocabSize;
  for (const shape of SHAPES) {
    const mesh = localMesh(path, shape);
    const prefill = await mesh.step(ONE_BLOCK, { blockTable: FIRST_BLOCK, ids: Int32Array.from(prompt), positions: Int32Array.from(prompt.keys()), rows: 'all' });
    assert.deepEqual(prefill, expected.subarray(0, prompt.length * vocab), `prefill at tp=${shape.tp} pp=${shape.pp}`);
    const decode = await mesh.step(ONE_BLOCK, { blockTable: FIRST_BLOCK, ids: Int32Array.of(300), positions: Int32Array.of(prompt.length), rows: 'last' });
    assert.deepEqual(decode, expected.subarray(prompt.length * vocab), `decode at tp=${shape.tp} pp=${shape.pp}`);
  }
});

test('f16 KV: ranks keep their heads of an f16 cache; prefill and decode logits equal one f16 process, bitwise', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const prompt = [1, 403, 407, 261, 378];
  const engine = await Engine.open(path, { kvCacheDtype: 'f16' });
  const expected = await engine.logits([...prompt, 300]);
  const vocab = engine.config.vocabSize;
  const mesh = localMesh(path, { tp: 2, pp: 2 }, 'f16');
  const prefill = await mesh.step(ONE_BLOCK, { blockTable: FIRST_BLOCK, ids: Int32Array.from(prompt), positions: Int32Array.from(prompt.keys()), rows: 'all' });
  assert.deepEqual(prefill, expected.subarray(0, prompt.length * vocab), 'prefill');
  const decode = await mesh.step(ONE_BLOCK, { blockTable: FIRST_BLOCK, ids: Int32Array.of(300), positions: Int32Array.of(prompt.length), rows: 'last' });
  assert.deepEqual(decode, expected.subarray(prompt.length * vocab), 'decode');
  assert.notDeepEqual(expected, await (await Engine.open(path)).logits([...prompt, 300]), 'f16 KV changes some logit');
});

test('tp=8 on stories260K: KV heads replicated (4 for 8 ranks), o_proj and down_proj gathered, logits unchanged', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const prompt = [1, 403, 407];
  const expected = await (await Engine.open(path)).logits(prompt);
  const mesh = localMesh(path, { tp: 8, pp: 1 });
  const logits = await mesh.step(ONE_BLOCK, { blockTable: FIRST_BLOCK, ids: Int32Array.from(prompt), positions: Int32Array.from(prompt.keys()), rows: 'all' });
  assert.deepEqual(logits, expected);
});

test('each rank reads only its shards: tp=2 ranks read about half the file each', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const whole = localMesh(path, { tp: 1, pp: 1 }).bytesRead[0];
  const split = localMesh(path, { tp: 2, pp: 1 }).bytesRead;
  const staged = localMesh(path, { tp: 1, pp: 2 }).bytesRead;
  for (const bytes of split) assert.ok(bytes < 0.55 * whole, `a tp rank read ${bytes} of ${whole} bytes`);
  // Only the replicated norm vectors are read twice.
  assert.ok(split[0] + split[1] < 1.02 * whole);
  for (const bytes of staged) assert.ok(bytes < 0.75 * whole, `a pp stage read ${bytes} of ${whole} bytes`);
});
