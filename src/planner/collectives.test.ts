import assert from 'node:assert/strict';
import { test } from 'node:test';
import { busFactor, collectiveMs, groupLink } from './collectives.js';
import { testDevice } from './test-hardware.js';

const link = { name: 'l', busBandwidthGBs: 100, latencyUs: 10 };

test("bus factors follow nccl-tests' convention", () => {
  assert.equal(busFactor('all-reduce', 8), 2 * 7 / 8);
  assert.equal(busFactor('all-gather', 4), 3 / 4);
  assert.equal(busFactor('all-to-all', 2), 1 / 2);
  assert.equal(busFactor('send', 2), 1);
});

test('α–β: latency plus bytes on each link over the bus bandwidth', () => {
  // 100 MB all-reduce over 4 ranks: 10 µs + 100e6 × 1.5 / 100e9 s = 0.01 + 1.5 ms.
  assert.ok(Math.abs(collectiveMs(link, 'all-reduce', 100e6, 4) - 1.51) < 1e-9);
  assert.equal(collectiveMs(link, 'all-reduce', 100e6, 1), 0, 'a group of one does not communicate');
  assert.ok(Math.abs(collectiveMs(link, 'send', 1e6, 2) - (0.01 + 0.01)) < 1e-9);
});

test('a group that spans nodes talks over the network', () => {
  const device = testDevice();
  assert.equal(groupLink(device, 8, 1).name, 'test-link');
  assert.equal(groupLink(device, 16, 1).name, 'test-network');
});
