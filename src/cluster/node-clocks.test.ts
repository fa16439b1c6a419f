import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clockOffset, NodeClocks } from './node-clocks.js';

test('the offset comes from the probe with the shortest round trip, within half of it', () => {
  // The worker's clock runs 5,000,000 µs ahead; one-way delays differ per probe.
  const skew = 5_000_000;
  const probe = (sentAt: number, there: number, back: number) => ({ sentAt, remoteAt: sentAt + there + skew, receivedAt: sentAt + there + back });
  const samples = [probe(0, 900, 100), probe(10_000, 40, 60), probe(20_000, 5_000, 5_000)];
  const offset = clockOffset(samples)!;
  assert.equal(offset.roundTripMicros, 100);
  assert.equal(offset.samples, 3);
  assert.ok(Math.abs(offset.offsetMicros - skew) <= offset.roundTripMicros / 2, `${offset.offsetMicros}`);
  assert.equal(clockOffset([]), undefined);
  // A sample whose answer came "before" the probe (a clock stepped back) is not used.
  assert.equal(clockOffset([{ sentAt: 10, remoteAt: 0, receivedAt: 5 }]), undefined);
});

test('a node\'s spans move onto the coordinator\'s clock; a node without samples keeps its stamps', () => {
  const clocks = new NodeClocks();
  const events = [{ name: 'step', ph: 'X' as const, ts: 2_000_500, dur: 10, pid: 1, tid: 0 }, { name: 'process_name', ph: 'M' as const, pid: 1 }];
  assert.deepEqual(clocks.align('n1', events), events);
  clocks.record('n1', { sentAt: 1_000, remoteAt: 2_001_050, receivedAt: 1_100 });
  const aligned = clocks.align('n1', events);
  assert.equal(aligned[0].ts, 2_000_500 - 2_000_000);
  assert.equal(aligned[1].ts, undefined);
  // An offset within its own uncertainty (a late answer on one host) moves nothing.
  const late = new NodeClocks();
  late.record('n2', { sentAt: 0, remoteAt: 900_000, receivedAt: 2_000_000 });
  assert.equal(late.offset('n2')!.offsetMicros, -100_000);
  assert.deepEqual(late.align('n2', events), events);
  for (let i = 0; i < 40; i++) clocks.record('n1', { sentAt: i, remoteAt: i, receivedAt: i + 1_000 });
  assert.equal(clocks.offset('n1')!.samples, 16, 'old samples are dropped');
  clocks.forget('n1');
  assert.equal(clocks.offset('n1'), undefined);
});
