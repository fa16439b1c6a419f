/** Attribution and roofline verdicts from hand-built traces and limits. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TraceEvent } from '../core/trace-event.js';
import { DEV_MACHINE } from '../planner/dev-machine.js';
import { hardwareFromProfile } from './hardware-from-profile.js';
import { profileHtml } from './html-report.js';
import { buildProfile } from './profile-report.js';
import { opRoofline, type MachineLimits } from './roofline.js';
import { attributeTrace, stepPhase } from './trace-attribution.js';

const LIMITS: MachineLimits = { memoryBandwidthGBs: 50, int8Gflops: 500, f16Gflops: 100 };

function span(name: string, ts: number, dur: number, extra: Partial<TraceEvent> = {}): TraceEvent {
  return { name, ph: 'X', ts, dur, pid: 0, tid: 0, ...extra };
}

/** One decode step of 30 ms: a 1 GB q8_0 matmul in 25 ms, attention 1 ms, a 2 ms wait; one 100-token prefill step. */
function trace(): TraceEvent[] {
  return [
    span('step', 0, 30_000, { args: { tokens: 1, sequences: 1 } }),
    span('matmul', 100, 25_000, { cat: 'backend', args: { dtype: 'q8_0', shape: '[5632, 2048]', weightBytes: 1e9, flops: 2e9 } }),
    span('attentionBatch', 25_200, 1_000, { cat: 'backend', args: { kvBytes: 1e6 } }),
    span('receive (wait)', 26_500, 2_000, { tid: 2, args: { bytes: 8192 } }),
    span('send', 26_000, 300, { tid: 1, args: { bytes: 8192 } }),
    span('step', 40_000, 500_000, { args: { tokens: 100, sequences: 1 } }),
    span('matmul', 40_100, 450_000, { cat: 'backend', args: { dtype: 'q8_0', shape: '[5632, 2048]', weightBytes: 1e9, flops: 2e11 } }),
  ];
}

test('steps of one token per sequence decode; more tokens than sequences prefill', () => {
  assert.equal(stepPhase(span('step', 0, 1, { args: { tokens: 4, sequences: 4 } })), 'decode');
  assert.equal(stepPhase(span('step', 0, 1, { args: { tokens: 5, sequences: 1 } })), 'prefill');
});

test('a step’s time splits into its ops, its waits, and what is left (the JavaScript between ops)', () => {
  const [decode, prefill] = attributeTrace(trace());
  assert.equal(decode.phase, 'decode');
  assert.equal(decode.tokens, 1);
  assert.equal(decode.byCategory.matmul, 25);
  assert.equal(decode.byCategory.attention, 1);
  assert.equal(decode.byCategory['communication-wait'], 2);
  assert.equal(decode.byCategory['communication-transfer'], 0.3);
  assert.equal(decode.byCategory['step-overhead'], 2);
  assert.equal(prefill.phase, 'prefill');
  assert.equal(prefill.tokens, 100);
  assert.equal([...decode.ops.keys()][0], 'matmul q8_0 [5632, 2048]');
});

test('a native collective on the compute thread counts its wait as waiting and the rest as transfer', () => {
  const [decode] = attributeTrace([
    span('step', 0, 10_000, { args: { tokens: 1, sequences: 1 } }),
    span('matmul', 100, 6_000, { cat: 'backend', args: { dtype: 'q8_0', shape: '[2048, 2048]' } }),
    span('all-reduce', 6_200, 1_500, { cat: 'collective', args: { bytes: 8192, waitUs: 1_200 } }),
  ]);
  assert.equal(decode.byCategory['communication-wait'], 1.2);
  assert.ok(Math.abs(decode.byCategory['communication-transfer'] - 0.3) < 1e-9);
  assert.ok(Math.abs(decode.byCategory['step-overhead'] - 2.5) < 1e-9);
});

test('shared rows count their computing as a matmul of the rows this rank took, their wait as waiting, the rest as transfer', () => {
  const [decode] = attributeTrace([
    span('step', 0, 10_000, { args: { tokens: 1, sequences: 1 } }),
    span('shared-rows', 100, 8_000, { cat: 'collective', args: { bytes: 8192, waitUs: 500, computeUs: 7_000, dtype: 'q8_0', shape: '[5632, 2048] x 2', weightBytes: 2e7, flops: 4e7 } }),
    span('shared-rows', 8_200, 1_000, { cat: 'collective', args: { bytes: 8192, waitUs: 900, computeUs: 400 } }),
  ]);
  assert.ok(Math.abs(decode.byCategory.matmul - 7.1) < 1e-9); // the second: at most what its wait leaves (0.1 ms)
  assert.ok(Math.abs(decode.byCategory['communication-wait'] - 1.4) < 1e-9);
  assert.ok(Math.abs(decode.byCategory['communication-transfer'] - 0.5) < 1e-9);
  const op = decode.ops.get('shared-rows q8_0 [5632, 2048] x 2');
  assert.ok(op && Math.abs(op.ms - 7) < 1e-9 && op.bytes === 2e7 && op.flops === 4e7);
});

test('roofline verdicts: near the bandwidth is memory-bound, near the matmul rate compute-bound, far from both overhead-bound', () => {
  // 1 GB in 25 ms = 40 GB/s of 50: 80% of the memory limit.
  const memory = opRoofline({ key: 'm', category: 'matmul', dtype: 'q8_0', calls: 1, ms: 25, bytes: 1e9, flops: 2e9 }, LIMITS);
  assert.equal(memory.verdict, 'memory-bound');
  assert.ok(Math.abs(memory.fraction - 0.8) < 1e-9);
  // 2e11 FLOPs in 450 ms = 444 GFLOP/s of 500 with 8-bit blocks.
  const compute = opRoofline({ key: 'c', category: 'matmul', dtype: 'q8_0', calls: 1, ms: 450, bytes: 1e9, flops: 2e11 }, LIMITS);
  assert.equal(compute.verdict, 'compute-bound');
  const idle = opRoofline({ key: 'o', category: 'attention', calls: 1, ms: 10, bytes: 1e6, flops: 1e6 }, LIMITS);
  assert.equal(idle.verdict, 'overhead-bound');
});

test('the profile names the decode bottleneck and its bandwidth against the measured triad', () => {
  const profile = buildProfile(attributeTrace(trace()), LIMITS, { promptTokens: 100, generatedTokens: 1, prefillMs: 500, decodeMs: 32 });
  const decode = profile.phases.find((p) => p.phase === 'decode');
  assert.equal(decode?.bottleneck, 'memory-bandwidth');
  // The driver's 2 ms between steps is the rest of the wall time.
  assert.equal(decode?.breakdown.driver, 2);
  assert.match(profile.summary, /^Decode is memory-bound \(\d+% of each token's 32\.0 ms\): each token reads 1\.001 GB .* of the 50\.0 GB\/s triad/);
  assert.match(profile.summary, /waiting for other ranks takes 6%/);
  const html = profileHtml(profile, 'a <test>');
  assert.match(html, /a &lt;test&gt;/);
  assert.match(html, /npm install echarts/);
  assert.match(profileHtml(profile, 't', '/* library */'), /id="roofline"/);
});

test("a profile run becomes this machine's hardware profile for tessera plan", () => {
  const profile = buildProfile(attributeTrace(trace()), LIMITS, { promptTokens: 100, generatedTokens: 1, prefillMs: 500, decodeMs: 32 });
  const hardware = hardwareFromProfile(DEV_MACHINE, profile, { cores: 8, memoryGiB: 64, description: 'test host' }, 'today');
  assert.equal(hardware.memoryBandwidthGBs, 50);
  assert.equal(hardware.compute.int8, 0.5);
  assert.equal(hardware.cores, 8);
  assert.ok(hardware.efficiency.memory > 0.5 && hardware.efficiency.memory <= 1);
  assert.equal(hardware.runtime.httpStepOverheadMs, DEV_MACHINE.runtime.httpStepOverheadMs);
});
