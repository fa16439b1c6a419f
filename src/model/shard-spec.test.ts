import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelConfig } from '../core/model-config.js';
import { sharedRowsOverlap } from './shard-spec.js';
import { checkTensorParallel, heldRows, shardLayout, shardSpecs, treeSplit } from './shard-spec.js';

test('row-parallel slices follow the canonical tree: 172 inputs of 32-element leaves', () => {
  assert.deepEqual([0, 1].map((r) => treeSplit(172, 32, 2, r)), [[0, 96], [96, 172]]);
  assert.deepEqual([0, 1, 2, 3].map((r) => treeSplit(172, 32, 4, r)), [[0, 32], [32, 96], [96, 128], [128, 172]]);
  // 64 inputs are 2 leaves: 4 ranks cannot each own a subtree.
  assert.equal(treeSplit(64, 32, 4, 0), undefined);
  // K-quant leaves of 256: 5632 = 22 leaves → 11 + 11 → 5 + 6 + 5 + 6.
  assert.deepEqual([0, 1, 2, 3].map((r) => treeSplit(5632, 256, 4, r)), [[0, 1280], [1280, 2816], [2816, 4096], [4096, 5632]]);
});

const stories = { numHeads: 8, numKvHeads: 4, headDim: 8, hiddenSize: 64, intermediateSize: 172, vocabSize: 512 } as ModelConfig;

test('stories260K layouts: row-parallel o_proj at tp 2, gathered at tp 4; KV heads replicated at tp 8', () => {
  const dtypes = { attentionOutput: 'f32', down: 'f32' } as const;
  assert.equal(shardLayout(stories, 2, 1, dtypes).attentionOutput, 'row');
  assert.equal(shardLayout(stories, 4, 1, dtypes).attentionOutput, 'gathered');
  assert.deepEqual(shardLayout(stories, 4, 3, dtypes).intermediate, [128, 172]);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map((r) => shardLayout(stories, 8, r, dtypes).kvHeads[0]), [0, 0, 1, 1, 2, 2, 3, 3]);
});

test('degrees that cannot split the model are refused, naming the constraint', () => {
  assert.throws(() => checkTensorParallel(stories, 3), { code: 'TESSERA_ERR_SHARD_CONSTRAINT', message: /power of two/ });
  assert.throws(() => checkTensorParallel(stories, 16), { code: 'TESSERA_ERR_SHARD_CONSTRAINT', message: /8 attention heads/ });
  assert.throws(() => checkTensorParallel({ ...stories, numKvHeads: 6, numHeads: 24 } as ModelConfig, 4), { code: 'TESSERA_ERR_SHARD_CONSTRAINT', message: /6 KV heads/ });
});

const tinyllama = { numHeads: 32, numKvHeads: 4, headDim: 64, hiddenSize: 2048, intermediateSize: 5632, vocabSize: 32000 } as ModelConfig;

test('a shared stage: two ranks run every head and hold their half of each matrix plus the overlap, cut at 16 rows', () => {
  const dtypes = { attentionOutput: 'q8_0', down: 'q8_0' } as const;
  const [first, second] = [0, 1].map((r) => shardLayout(tinyllama, 2, r, dtypes, 0.25));
  assert.equal(first!.feedForward, 'shared');
  assert.deepEqual(first!.shared, { overlap: 0.25 });
  assert.deepEqual([second!.queryHeads, second!.kvHeads, second!.vocab], [[0, 32], [0, 4], [0, 32000]]);
  const [specs0, specs1] = [shardSpecs(tinyllama, first!), shardSpecs(tinyllama, second!)];
  assert.deepEqual(specs0['ffn_gate.weight'], { kind: 'column', start: 0, end: 4224 });
  assert.deepEqual(specs1['ffn_gate.weight'], { kind: 'column', start: 1408, end: 5632 });
  assert.deepEqual(specs1['ffn_down.weight'], { kind: 'column', start: 512, end: 2048 });
  // q, k, v: one run of their 2,560 concatenated rows each ([0, 1920) and [640, 2560)).
  assert.deepEqual(specs0['attn_q.weight'], { kind: 'column', start: 0, end: 1920 });
  assert.deepEqual(specs0['attn_k.weight'], { kind: 'column', start: 0, end: 0 });
  assert.deepEqual(specs1['attn_q.weight'], { kind: 'column', start: 640, end: 2048 });
  assert.deepEqual(specs1['attn_v.weight'], { kind: 'column', start: 0, end: 256 });
  assert.deepEqual(specs0['output.weight'], { kind: 'column', start: 0, end: 24000 });
  assert.equal(specs1['token_embd.weight']!.kind, 'replicated');
  assert.deepEqual(heldRows(100, 0, 0.5), [0, 100]);
  // Not granted: no overlap, four ranks, or rows not in groups of 16 (stories260K's 172).
  assert.equal(shardLayout(tinyllama, 2, 0, dtypes, 0).feedForward, 'row');
  assert.equal(shardLayout(tinyllama, 4, 0, dtypes, 0.25).shared, undefined);
  assert.equal(shardLayout(stories, 2, 0, { attentionOutput: 'f32', down: 'f32' }, 0.25).shared, undefined);
});

test('TESSERA_TP_SHARE: a fraction from 0 to 0.5, default 0.25; anything else is refused with a coded error', () => {
  assert.equal(sharedRowsOverlap(undefined), 0.25);
  assert.equal(sharedRowsOverlap('0'), 0);
  assert.equal(sharedRowsOverlap('0.5'), 0.5);
  for (const bad of ['0.6', '-1', 'half']) assert.throws(() => sharedRowsOverlap(bad), { code: 'TESSERA_ERR_INVALID_ARGUMENT' });
});
