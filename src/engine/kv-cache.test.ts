/**
 * A KV cache's pools are resident once it is made: every page written at
 * construction, so no step (or KV transfer) pays a block's first touch;
 * large pools lie on 2 MiB pages (fewer TLB misses, and no slow first use
 * of pages left idle on a virtual machine).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { ModelConfig } from '../core/model-config.js';
import { loadNativeAddon } from '../backend/native/native-addon.js';
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

/** Bytes of this process's anonymous memory on transparent huge pages. */
function anonHugeBytes(): number {
  const line = readFileSync('/proc/self/smaps_rollup', 'utf8').split('\n').find((entry) => entry.startsWith('AnonHugePages:'));
  return Number(line?.split(/\s+/)[1] ?? 0) * 1024;
}

/** Why huge pages cannot be expected here, or undefined when they can. */
function noHugePages(): string | undefined {
  if (process.platform !== 'linux') return 'reads /proc';
  if (!loadNativeAddon().ok) return 'the native addon is not built';
  const mode = /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1];
  return mode === 'never' ? 'transparent huge pages are off on this machine' : undefined;
}

test('large KV pools lie on 2 MiB pages when the native addon is built', { skip: noHugePages() }, () => {
  const config = { numLayers: 2, numKvHeads: 4, headDim: 64 } as ModelConfig;
  // 2 layers × (keys + values) × 1,024 blocks × 16 positions × 256 floats × 4 bytes = 64 MiB, 16 MiB a pool
  const before = anonHugeBytes();
  const cache = new KvCache(config, 1024);
  const grown = anonHugeBytes() - before;
  assert.equal(cache.keys[0].data.byteLength, 16 * 2 ** 20);
  assert.ok(grown >= 0.9 * 64 * 2 ** 20, `huge pages grew by ${(grown / 2 ** 20).toFixed(1)} MiB for 64 MiB of pools`);
});
