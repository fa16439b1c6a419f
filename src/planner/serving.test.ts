import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTesseraError } from '../core/errors.js';
import { planDeployment, type PlanInput } from './plan.js';
import { testDevice, TEST_SHAPE } from './test-hardware.js';
import type { Arrival } from './workload.js';

function input(arrival: Arrival, burst = false, overrides: Partial<PlanInput> = {}): PlanInput {
  return {
    shape: TEST_SHAPE,
    hardware: testDevice(),
    layout: { tp: 1, pp: 1, ep: 1, dp: 1 },
    weights: 'bf16',
    kv: 'bf16',
    workload: { inputLength: 512, outputLength: 64, arrival, burst },
    frontend: 'none',
    ...overrides,
  };
}

test('a burst of one: TTFT is the prompt pass, throughput is output over TTFT plus the decode steps', () => {
  const result = planDeployment(input({ kind: 'closed', concurrency: 1 }, true));
  const total = (result.ttftMs as number) + 63 * result.tpotMs;
  assert.ok(Math.abs(result.outputTokensPerSecond - (64 * 1000) / total) < 1e-6);
  assert.equal(result.batch, 1);
  assert.equal(result.bottleneck, 'memory-bandwidth');
});

test('closed loop: Little’s law, and clients beyond the batch limit wait before their first token', () => {
  const hardware = testDevice();
  const limited = { ...hardware, runtime: { ...hardware.runtime, maxNumSeqs: 8 } };
  const eight = planDeployment(input({ kind: 'closed', concurrency: 8 }, false, { hardware: limited }));
  const sixteen = planDeployment(input({ kind: 'closed', concurrency: 16 }, false, { hardware: limited }));
  assert.equal(sixteen.batch, 8);
  assert.equal(sixteen.batchLimit, 'max-num-seqs');
  assert.ok(Math.abs(sixteen.outputTokensPerSecond - eight.outputTokensPerSecond) < 1e-6, 'the same 8 sequences run');
  // Twice the clients at the same throughput: twice the response time, the extra spent queued before the first token.
  const response = (r: typeof eight): number => (r.ttftMs as number) + 63 * r.tpotMs;
  assert.ok(Math.abs(response(sixteen) - 2 * response(eight)) < 1e-6);
});

test('Poisson arrivals: output follows the arrival rate until the replica saturates', () => {
  const light = planDeployment(input({ kind: 'poisson', qps: 1 }));
  assert.ok(Math.abs(light.outputTokensPerSecond - 64) < 1e-9);
  assert.equal(light.saturated, false);
  const heavy = planDeployment(input({ kind: 'poisson', qps: 1e6 }));
  assert.equal(heavy.saturated, true);
  assert.equal(heavy.ttftMs, null);
});

test('offline runs fill the KV cache: 64 GiB less the weights, over the bytes a whole sequence needs', () => {
  const result = planDeployment(input({ kind: 'max' }));
  // 4 layers × 2 KV heads × 128 × 2 (K and V) × 2 bytes = 4 KiB per token; 576 tokens a sequence.
  const weights = result.weightsPerDeviceGiB * 2 ** 30;
  const expected = Math.min(1024, Math.floor(Math.floor((64 * 2 ** 30 - weights) / 4096) / 576));
  assert.equal(result.batch, expected);
});

test('data parallelism: replicas share the clients and add their throughput', () => {
  const one = planDeployment(input({ kind: 'closed', concurrency: 4 }));
  const two = planDeployment(input({ kind: 'closed', concurrency: 8 }, false, { layout: { tp: 1, pp: 1, ep: 1, dp: 2 } }));
  assert.ok(Math.abs(two.outputTokensPerSecond - 2 * one.outputTokensPerSecond) < 1e-6);
  assert.equal(two.devices, 2);
});

test('one sequence through two pipeline stages: half of every stage’s time is a bubble', () => {
  const result = planDeployment(input({ kind: 'closed', concurrency: 1 }, true, { layout: { tp: 1, pp: 2, ep: 1, dp: 1 } }));
  const step = result.decodeStep;
  assert.ok(step.bubbleMs > 0.4 * step.ms && step.bubbleMs < 0.6 * step.ms, `${step.bubbleMs} of ${step.ms}`);
});

test('a sequence longer than the KV cache is a coded error naming what would fit', () => {
  try {
    planDeployment(input({ kind: 'closed', concurrency: 1 }, false, { kvCacheGiB: 1e-6 }));
    assert.fail('expected an error');
  } catch (error) {
    assert.ok(isTesseraError(error) && error.code === 'TESSERA_ERR_PLAN_DOES_NOT_FIT', String(error));
    assert.match((error as Error).message, /--tp\/--pp/);
  }
});
