import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ModelConfig } from '../core/model-config.js';
import { BlockManager, blockHash, ROOT_HASH } from './block-manager.js';

const config = { numLayers: 1, numKvHeads: 1, headDim: 2 } as ModelConfig;

test('blocks are reference-counted and return to the free list only at zero', () => {
  const manager = new BlockManager(config, 3, 4);
  const a = manager.allocate()!;
  manager.acquire(a);
  assert.equal(manager.freeCount, 2);
  manager.release([a]);
  assert.equal(manager.freeCount, 2, 'one holder is left');
  manager.release([a]);
  assert.equal(manager.freeCount, 3);
  assert.throws(() => manager.release([a]), { code: 'TESSERA_ERR_INTERNAL' });
});

test('a registered full block is found by its prefix, survives release, and is evicted only when reused', () => {
  const manager = new BlockManager(config, 2, 4);
  const tokens = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const first = manager.allocate()!;
  const second = manager.allocate()!;
  const h1 = blockHash(ROOT_HASH, tokens.slice(0, 4));
  const h2 = blockHash(h1, tokens.slice(4, 8));
  manager.register(first, h1);
  manager.register(second, h2);
  assert.deepEqual(manager.matchPrefix(tokens, 8).blocks, [first, second]);
  assert.deepEqual(manager.matchPrefix(tokens, 7).blocks, [first], 'only whole blocks within the limit');
  assert.deepEqual(manager.matchPrefix([1, 2, 3, 9, 5, 6, 7, 8], 8).blocks, [], 'a different first block hides the second');
  manager.release([first, second]);
  assert.deepEqual(manager.matchPrefix(tokens, 8).blocks, [first, second], 'freed blocks keep their contents');
  // Tail blocks are released first, so they are reused first and the shared head lives longest.
  const reused = manager.allocate();
  assert.equal(reused, second);
  assert.deepEqual(manager.matchPrefix(tokens, 8).blocks, [first]);
});

test('a block with the same prefix as a cached one is not registered twice', () => {
  const manager = new BlockManager(config, 2, 4);
  const hash = blockHash(ROOT_HASH, [1, 2, 3, 4]);
  const a = manager.allocate()!;
  const b = manager.allocate()!;
  manager.register(a, hash);
  manager.register(b, hash);
  manager.release([a]);
  manager.allocate(); // reuses a: its hash goes
  assert.deepEqual(manager.matchPrefix([1, 2, 3, 4, 5], 4).blocks, []);
  assert.equal(manager.freeCount, 0);
  manager.release([b]);
});
