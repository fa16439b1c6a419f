/** `tessera plan --pd`: pool sizes, the KV transfer's cost, and when disaggregated prefill and decode pays (hand-built device, round numbers). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TesseraError } from '../core/errors.js';
import { parsePdSplit, planDisaggregated, planSplit } from './disaggregation.js';
import type { PlanInput } from './plan.js';
import { TEST_SHAPE, testDevice } from './test-hardware.js';
import type { Arrival } from './workload.js';

function input(arrival: Arrival, overrides: Partial<PlanInput> = {}, lengths = { inputLength: 4096, outputLength: 128 }): PlanInput {
  return { shape: TEST_SHAPE, hardware: testDevice(), layout: { tp: 1, pp: 1, ep: 1, dp: 4 }, weights: 'bf16', kv: 'bf16', workload: { ...lengths, arrival, burst: false }, frontend: 'none', ...overrides };
}

// 2,048 tokens × 4 layers × (2 × 2 KV heads × 128) elements × 2 bytes (bf16).
const KV_BYTES = 2048 * 4 * 512 * 2;
const LONG_PROMPTS = { inputLength: 2048, outputLength: 32 };

test('long prompts among decoding streams: every split of 4 replicas is weighed, the KV moves over the node\'s link, and taking the prompt chunks out of the decode steps cuts the tail', () => {
  const comparison = planDisaggregated(input({ kind: 'poisson', qps: 500 }, {}, LONG_PROMPTS));
  assert.deepEqual(comparison.candidates.map((plan) => plan.split), [{ prefill: 1, decode: 3 }, { prefill: 2, decode: 2 }, { prefill: 3, decode: 1 }]);
  const chosen = comparison.disaggregated;
  assert.equal(chosen.transfer.bytesPerRequest, KV_BYTES);
  assert.equal(chosen.transfer.link, 'test-link');
  // 10 µs + 8 MiB at 100 GB/s; the prefill (compute-bound, milliseconds) hides all but the last layer's share.
  assert.ok(Math.abs(chosen.transfer.ms - (0.01 + KV_BYTES / 1e8)) < 1e-9);
  assert.ok(Math.abs(chosen.transfer.exposedMs - (0.01 + KV_BYTES / 1e8 / 4)) < 1e-9);
  assert.equal(comparison.outcome, 'pays', comparison.verdict);
  assert.equal(chosen.saturated, false);
  // A colocated step that carries a 2,048-token chunk is tens of decode steps long, and more than 1% of a stream's steps carry one.
  const tail = comparison.colocatedTail;
  assert.ok(tail.stallShare >= 0.01 && tail.stallMs > 10 * chosen.decode.stepMs, JSON.stringify(tail));
  assert.equal(tail.p99GapMs, tail.stallMs);
  assert.ok(chosen.p99GapMs < tail.p99GapMs / 10);
  // The mean TPOT hardly moves: a chunk below the ridge point rides nearly free in a memory-bound step.
  assert.ok(Math.abs(chosen.tpotMs - comparison.colocated.tpotMs) < 0.1 * comparison.colocated.tpotMs);
  assert.match(comparison.verdict, /^pays: 2 prefill \+ 2 decode replicas, p99 gap between tokens/);
  // One prefill replica cannot take 500 prompts of 2,048 tokens a second.
  assert.equal(comparison.candidates[0].saturated, 'prefill');
  assert.equal(comparison.candidates[0].ttftMs, null);
});

test('a slow link between replicas on different nodes: the transfer shows before the second token and disaggregation does not pay', () => {
  const slow = testDevice({ devicesPerNode: 1, network: { name: 'slow-network', busBandwidthGBs: 0.05, latencyUs: 50 } });
  const comparison = planDisaggregated(input({ kind: 'poisson', qps: 20 }, { hardware: slow }, { inputLength: 4096, outputLength: 16 }));
  const chosen = comparison.disaggregated;
  assert.equal(chosen.transfer.link, 'slow-network');
  assert.ok(chosen.transfer.exposedMs > 300, `${chosen.transfer.exposedMs} ms exposed`);
  assert.equal(comparison.outcome, 'no');
  assert.ok(chosen.p99GapMs > 300);
  assert.match(comparison.verdict, /^does not pay/);
});

test('a closed loop: throughput × cycle = clients (Little), and the pool at capacity is named when clients outnumber it', () => {
  const plan = planSplit(input({ kind: 'closed', concurrency: 8 }), { prefill: 1, decode: 1 });
  const cycleMs = plan.ttftMs! + plan.tpotMs * 127; // the default lengths: 4,096 in, 128 out
  assert.ok(Math.abs((plan.requestsPerSecond * cycleMs) / 1000 - 8) < 1e-3, `${plan.requestsPerSecond} req/s × ${cycleMs} ms`);
  assert.equal(plan.saturated, false);
  const crowded = planSplit(input({ kind: 'closed', concurrency: 100_000 }), { prefill: 1, decode: 1 });
  assert.equal(crowded.bound, 'prefill');
  assert.equal(crowded.saturated, false);
  assert.ok(crowded.ttftMs! > plan.ttftMs!);
});

test('bad splits and bursts are refused with coded errors', () => {
  assert.deepEqual(parsePdSplit('2:6'), { prefill: 2, decode: 6 });
  const invalid = (error: unknown): boolean => error instanceof TesseraError && error.code === 'TESSERA_ERR_INVALID_ARGUMENT';
  for (const text of ['0:1', '1', '1:x', '-1:2']) assert.throws(() => parsePdSplit(text), invalid, text);
  assert.throws(() => planSplit({ ...input({ kind: 'closed', concurrency: 4 }), workload: { inputLength: 64, outputLength: 8, arrival: { kind: 'closed', concurrency: 4 }, burst: true } }, { prefill: 1, decode: 1 }), invalid);
});
