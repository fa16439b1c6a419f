/** Routing decisions and replica health as pure functions of hand-built states (no processes, no sockets). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PrefixIndex, prefixHashes } from './prefix-index.js';
import { applyReplicaEvent, initialReplica, isRoutable, type ReplicaEvent, type ReplicaId, type ReplicaState } from './replica-state.js';
import { route, type Candidate } from './routing-policy.js';

function replica(id: number, load = 0, kvUse = 0): ReplicaState {
  return { ...initialReplica(id as ReplicaId, `http://r${id}`), healthy: true, reportedLoad: load, kvUse };
}

function candidates(loads: number[], matched: number[]): Candidate[] {
  return loads.map((load, id) => ({ replica: replica(id, load), matchedBlocks: matched[id] ?? 0 }));
}

test('prefix: the replica holding the longest prefix wins while its load passes the balance gate', () => {
  assert.deepEqual(route(candidates([3, 2, 2], [0, 5, 2]), 'prefix', 0), { replica: 1, matchedBlocks: 5, reason: 'prefix' });
  // Replica 1 holds the prefix but is far busier than replica 0: the gate sends the request to the least loaded.
  assert.deepEqual(route(candidates([1, 10, 3], [0, 5, 0]), 'prefix', 0), { replica: 0, matchedBlocks: 0, reason: 'least-load' });
  // Within the slack (8 sequences) prefix wins over a lighter replica; at high loads within 1.5 × the least.
  assert.equal(route(candidates([2, 10], [0, 3]), 'prefix', 0)?.replica, 1);
  assert.equal(route(candidates([40, 60], [0, 3]), 'prefix', 0)?.replica, 1);
  assert.equal(route(candidates([40, 61], [0, 3]), 'prefix', 0)?.replica, 0);
  // Nobody holds it: least loaded, then least KV use.
  const tied: Candidate[] = [{ replica: replica(0, 2, 0.9), matchedBlocks: 0 }, { replica: replica(1, 2, 0.1), matchedBlocks: 0 }];
  assert.deepEqual(route(tied, 'prefix', 0), { replica: 1, matchedBlocks: 0, reason: 'least-load' });
});

test('a hot prefix cannot pile everything on one replica', () => {
  const states = [replica(0), replica(1), replica(2)];
  const index = new PrefixIndex(1000);
  const hot = prefixHashes(Array.from({ length: 64 }, (_, i) => i), 16);
  const sent = [0, 0, 0];
  for (let turn = 0; turn < 60; turn++) {
    const decision = route(states.map((state) => ({ replica: state, matchedBlocks: index.matchedBlocks(state.id, hot) })), 'prefix', turn)!;
    index.record(decision.replica, hot);
    sent[decision.replica]++;
    states[decision.replica] = applyReplicaEvent(states[decision.replica], { type: 'SequenceRouted', trial: false });
  }
  // Every request shares one prefix and none finishes: the gate spreads them within the slack.
  assert.ok(Math.max(...sent) - Math.min(...sent) <= 9, `sent ${sent.join(', ')}`);
});

test('least-load and round-robin; ties rotate between equal replicas', () => {
  assert.equal(route(candidates([5, 1, 3], [9, 0, 0]), 'least-load', 0)?.replica, 1);
  assert.deepEqual([0, 1, 2, 3].map((turn) => route(candidates([9, 0, 0], [9, 0, 0]), 'round-robin', turn)?.replica), [0, 1, 2, 0]);
  assert.deepEqual([0, 1, 2].map((turn) => route(candidates([0, 0, 0], []), 'prefix', turn)?.replica), [0, 1, 2]);
  assert.equal(route([], 'prefix', 0), undefined);
});

test('the prefix index matches leading blocks per replica, forgets the least recently used, and forgets a lost replica', () => {
  const index = new PrefixIndex(4);
  const a = prefixHashes([1, 2, 3, 4, 5, 6, 7, 8, 9], 4); // two full blocks; the ninth token is not a block
  assert.equal(a.length, 2);
  const b = prefixHashes([1, 2, 3, 4, 9, 9, 9, 9], 4);
  assert.equal(b[0], a[0], 'chained: the same first block has the same name');
  assert.notEqual(b[1], a[1]);
  index.record(0 as ReplicaId, a);
  assert.equal(index.matchedBlocks(0 as ReplicaId, b), 1);
  assert.equal(index.matchedBlocks(1 as ReplicaId, a), 0);
  index.record(1 as ReplicaId, prefixHashes(Array.from({ length: 16 }, (_, i) => 100 + i), 4));
  assert.equal(index.size, 4);
  index.record(1 as ReplicaId, b.slice(1)); // over capacity: a's first block is the oldest
  assert.equal(index.matchedBlocks(0 as ReplicaId, a), 0);
  index.forget(1 as ReplicaId);
  assert.equal(index.size, 0);
});

test('breaker: a failure opens it, polls answered after the cooldown half-open it, one trial closes it', () => {
  const fold = (state: ReplicaState, ...events: ReplicaEvent[]): ReplicaState => events.reduce(applyReplicaEvent, state);
  const healthy = (at: number): ReplicaEvent => ({ type: 'HealthReported', healthy: true, draining: false, status: 'ready', at });
  const answered = (at: number): ReplicaEvent => ({ type: 'LoadReported', running: 0, waiting: 0, blocksUsed: 0, numBlocks: 10, capacity: 8, at });
  let state = replica(0);
  assert.ok(isRoutable(state));
  state = fold(state, { type: 'ReplicaFailed', why: 'stream broke', at: 1000 });
  assert.deepEqual([state.breaker, state.problem], ['open', 'stream broke']);
  assert.ok(!isRoutable(state));
  state = fold(state, { type: 'CooldownChecked', at: 2100, cooldownMs: 1000 });
  assert.equal(state.breaker, 'open', 'still "healthy" from polls before the failure, but none answered since: a killed replica stays out');
  state = fold(state, { type: 'HealthReported', healthy: false, draining: false, status: 'unreachable', at: 1900 }, answered(1950), { type: 'CooldownChecked', at: 2100, cooldownMs: 1000 });
  assert.equal(state.breaker, 'open', 'not while its health is bad');
  state = fold(state, healthy(2200), answered(2200), { type: 'CooldownChecked', at: 2300, cooldownMs: 1000 });
  assert.equal(state.breaker, 'half-open');
  assert.ok(isRoutable(state));
  state = fold(state, { type: 'SequenceRouted', trial: true });
  assert.ok(!isRoutable(state), 'one trial at a time');
  const failedTrial = fold(state, { type: 'ReplicaFailed', why: 'refused', at: 2400 });
  assert.equal(failedTrial.breaker, 'open');
  const abandonedTrial = fold(state, { type: 'SequenceEnded', trial: true });
  assert.deepEqual([abandonedTrial.breaker, isRoutable(abandonedTrial)], ['half-open', true], 'a trial cancelled before it answered frees the slot for another');
  state = fold(state, { type: 'SequenceAnswered', trial: true });
  assert.equal(state.breaker, 'closed');
  assert.ok(isRoutable(state));
});

test('a silent replica opens its breaker; a draining one only stops taking work; load is the larger of in-flight and reported', () => {
  const silent = applyReplicaEvent(replica(0), { type: 'HealthReported', healthy: false, draining: false, status: 'unreachable', at: 5 });
  assert.deepEqual([silent.breaker, isRoutable(silent)], ['open', false]);
  const draining = applyReplicaEvent(replica(0), { type: 'HealthReported', healthy: false, draining: true, status: 'draining', at: 5 });
  assert.deepEqual([draining.breaker, isRoutable(draining)], ['closed', false]);
  let state = applyReplicaEvent(replica(0), { type: 'LoadReported', running: 2, waiting: 1, blocksUsed: 30, numBlocks: 120, capacity: 2, at: 5 });
  state = applyReplicaEvent(applyReplicaEvent(state, { type: 'SequenceRouted', trial: false }), { type: 'SequenceRouted', trial: false });
  assert.deepEqual([state.reportedLoad, state.inFlight, state.kvUse], [3, 2, 0.25]);
  assert.ok(!isRoutable(state), 'full: as many in flight as it holds');
  state = applyReplicaEvent(state, { type: 'SequenceEnded', trial: false });
  assert.equal(state.inFlight, 1);
  assert.ok(isRoutable(state));
});
