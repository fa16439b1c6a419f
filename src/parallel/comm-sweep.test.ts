/** The sweep's median: what every figure of `bench comm` reports over its repetitions. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median } from './comm-sweep.js';

test('median of odd and even counts, whatever the order', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
});
