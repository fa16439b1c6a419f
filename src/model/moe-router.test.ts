import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExpertLoad } from './moe-expert-load.js';
import { groupByExpert, routeTokens, tokensPerExpert } from './moe-router.js';

const close = (actual: number, expected: number): void => assert.ok(Math.abs(actual - expected) < 1e-6, `${actual} ≉ ${expected}`);

test('the router keeps the top-k softmax weights, sorted by expert index, renormalised only when asked', () => {
  /** [2 tokens, 4 experts] */
  const logits = Float32Array.from([0, 2, 1, 3, 5, 0, 0, 4]);
  const raw = routeTokens(logits, 2, { numExperts: 4, numExpertsPerToken: 2, normTopKProb: false });
  assert.deepEqual([...raw.experts], [1, 3, 0, 3]);
  const z0 = 1 + Math.exp(2) + Math.exp(1) + Math.exp(3);
  close(raw.weights[0], Math.exp(2) / z0);
  close(raw.weights[1], Math.exp(3) / z0);
  const normed = routeTokens(logits, 2, { numExperts: 4, numExpertsPerToken: 2, normTopKProb: true });
  assert.deepEqual([...normed.experts], [1, 3, 0, 3]);
  close(normed.weights[0] + normed.weights[1], 1);
  close(normed.weights[2], Math.exp(5) / (Math.exp(5) + Math.exp(4)));
});

test('ties go to the lower expert index', () => {
  const routing = routeTokens(Float32Array.from([1, 1, 1, 1]), 1, { numExperts: 4, numExpertsPerToken: 2, normTopKProb: true });
  assert.deepEqual([...routing.experts], [0, 1]);
  assert.deepEqual([...routing.weights], [0.5, 0.5]);
});

test('groups list each expert’s tokens in batch order and map every slot to its row', () => {
  const logits = Float32Array.from([9, 8, 0, 0, 0, 9, 8, 0, 9, 0, 0, 8]);
  const routing = routeTokens(logits, 3, { numExperts: 4, numExpertsPerToken: 2, normTopKProb: true });
  assert.deepEqual([...routing.experts], [0, 1, 1, 2, 0, 3]);
  const groups = groupByExpert(routing, 4);
  assert.deepEqual([...groups.offsets], [0, 2, 4, 5, 6]);
  assert.deepEqual([...groups.tokens], [0, 2, 0, 1, 1, 2]);
  for (let slot = 0; slot < 6; slot++) {
    const token = Math.floor(slot / 2);
    assert.equal(groups.tokens[groups.entryOfSlot[slot]], token);
    const expert = routing.experts[slot];
    assert.ok(groups.entryOfSlot[slot] >= groups.offsets[expert] && groups.entryOfSlot[slot] < groups.offsets[expert + 1]);
  }
  assert.deepEqual([...tokensPerExpert(groups)], [2, 2, 1, 1]);
});

test('expert load adds counts per layer and reports imbalance', () => {
  const load = new ExpertLoad(3);
  load.record(1, Int32Array.from([2, 2, 1, 1]));
  load.record(1, Int32Array.from([4, 0, 0, 0]));
  assert.deepEqual(load.layer(1), [6, 2, 1, 1]);
  assert.deepEqual(load.layer(0), []);
  assert.equal(load.imbalance(1), 6 / 2.5);
  assert.deepEqual(load.snapshot().steps, [0, 2, 0]);
  load.reset();
  assert.deepEqual(load.layer(1), [0, 0, 0, 0]);
});
