import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelConfig } from '../core/model-config.js';
import { checkTensorParallel, shardLayout, treeSplit } from './shard-spec.js';

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
