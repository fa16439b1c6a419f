import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeAddon } from '../backend/native/native-addon.js';
import { sliceBytes } from './slice-bytes.js';

test('sliceBytes gives arrays of exactly the length asked, on 2 MiB pages when the addon is built, that keep what is written', () => {
  for (const length of [0, 1, 4095, (4 << 20) - 1, 4 << 20, (6 << 20) + 3]) {
    const bytes = sliceBytes(length);
    assert.equal(bytes.byteLength, length);
    bytes.fill(7);
    if (length > 0) assert.equal(bytes[length - 1], 7);
  }
  const load = loadNativeAddon();
  if (!load.ok) return;
  const huge = sliceBytes(5 << 20);
  // The addon's arrays are views of their own 2 MiB-aligned blocks, not of V8's heap.
  assert.equal(huge.byteOffset, 0);
  assert.equal(huge.buffer.byteLength, 5 << 20);
  assert.throws(() => load.addon.hugeBytes(-1), /whole number of bytes/);
  assert.throws(() => load.addon.hugeBytes(1.5), /whole number of bytes/);
});
