/**
 * A KV cache's pools are resident once it is made: every page written at
 * construction, so no step (or KV transfer) pays a block's first touch.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { ModelConfig } from '../core/model-config.js';
import { KvCache } from './kv-cache.js';

/** This process's resident bytes (Linux's /proc). */
function residentBytes(): number {
  return Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
}

test('a new KV cache holds its pools in resident memory (pages written up front), zeroed', { skip: process.platform !== 'linux' && 'reads /proc/self/statm' }, () => {
  const config = { numLayers: 4, numKvHeads: 4, headDim: 64 } as ModelConfig;
  // 4 layers × (keys + values) × 512 blocks × 16 positions × 256 floats × 4 bytes = 64 MiB
  const before = residentBytes();
  const cache = new KvCache(config, 512);
  const grown = residentBytes() - before;
  const poolBytes = cache.keys.concat(cache.values).reduce((sum, pool) => sum + pool.data.byteLength, 0);
  assert.equal(poolBytes, 64 * 2 ** 20);
  assert.ok(grown >= 0.9 * poolBytes, `resident memory grew by ${(grown / 2 ** 20).toFixed(1)} MiB for ${poolBytes / 2 ** 20} MiB of pools`);
  assert.ok(cache.keys.every((pool) => pool.data.every((value) => value === 0)));
});
