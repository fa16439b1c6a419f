/** Disaggregated routing (--pd) as a pure function of hand-built replica states. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReplicaRole } from '../serve/pd-protocol.js';
import { routingOf } from '../cli/commands/router.js';
import { routePair } from './pd-policy.js';
import { initialReplica, type ReplicaId, type ReplicaState } from './replica-state.js';
import type { Candidate } from './routing-policy.js';

function replica(id: number, role: ReplicaRole, load = 0, blocksFree = 100, kvTransfer = true): ReplicaState {
  return { ...initialReplica(id as ReplicaId, `http://r${id}`), healthy: true, role, reportedLoad: load, blocksFree, kvTransfer };
}

const candidate = (state: ReplicaState, matchedBlocks = 0): Candidate => ({ replica: state, matchedBlocks });

test('the prompt goes to the prefill replica holding its prefix, the decoding to the least loaded decode replica with room', () => {
  const pool = [candidate(replica(0, 'prefill', 3)), candidate(replica(1, 'prefill', 4), 5), candidate(replica(2, 'decode', 9)), candidate(replica(3, 'decode', 2))];
  assert.deepEqual(routePair(pool, 10, 0), { kind: 'disaggregated', prefill: 1, decode: 3, matchedBlocks: 5 });
  // The lighter decode replica has no room for the prompt's 10 blocks: the other one takes it.
  const full = [pool[0], pool[1], candidate(replica(2, 'decode', 9)), candidate(replica(3, 'decode', 2, 6))];
  assert.deepEqual(routePair(full, 10, 0), { kind: 'disaggregated', prefill: 1, decode: 2, matchedBlocks: 5 });
  // Nobody has room: the least loaded still, its reservation waits (429) until blocks free up.
  const none = [pool[0], candidate(replica(2, 'decode', 9, 1)), candidate(replica(3, 'decode', 2, 1))];
  assert.deepEqual(routePair(none, 10, 0), { kind: 'disaggregated', prefill: 0, decode: 3, matchedBlocks: 0 });
});

test('a role-both replica serves either side, never both sides of one sequence', () => {
  const both = [candidate(replica(0, 'both', 1)), candidate(replica(1, 'both', 5))];
  assert.deepEqual(routePair(both, 4, 0), { kind: 'disaggregated', prefill: 1, decode: 0, matchedBlocks: 0 });
  assert.deepEqual(routePair([candidate(replica(0, 'both'))], 4, 0), { kind: 'colocated', replica: 0, matchedBlocks: 0, reason: 'no-prefill' });
});

test('an empty pool runs the sequence whole; replicas that cannot move KV only ever run whole sequences', () => {
  assert.deepEqual(routePair([candidate(replica(0, 'decode')), candidate(replica(1, 'decode', 3))], 4, 0), { kind: 'colocated', replica: 0, matchedBlocks: 0, reason: 'no-prefill' });
  assert.deepEqual(routePair([candidate(replica(0, 'prefill', 2), 3)], 4, 0), { kind: 'colocated', replica: 0, matchedBlocks: 3, reason: 'no-decode' });
  const mesh = [candidate(replica(0, 'both', 0, 100, false)), candidate(replica(1, 'prefill', 4))];
  assert.deepEqual(routePair(mesh, 4, 0), { kind: 'colocated', replica: 0, matchedBlocks: 0, reason: 'no-decode' });
  assert.equal(routePair([], 4, 0), undefined);
});

test('equal decode replicas take turns; one that cannot take KV never decodes', () => {
  const pool = [candidate(replica(0, 'prefill')), candidate(replica(1, 'decode')), candidate(replica(2, 'decode')), candidate(replica(3, 'decode', 0, 100, false))];
  assert.deepEqual(routePair(pool, 4, 0), { kind: 'disaggregated', prefill: 0, decode: 1, matchedBlocks: 0 });
  assert.deepEqual(routePair(pool, 4, 1), { kind: 'disaggregated', prefill: 0, decode: 2, matchedBlocks: 0 });
  assert.deepEqual(routePair(pool, 4, 2), { kind: 'disaggregated', prefill: 0, decode: 1, matchedBlocks: 0 });
});

test('with a local prefill limit, a short sequence runs whole on the decode replica it would have gone to; a longer one is disaggregated', () => {
  const pool = [candidate(replica(0, 'prefill', 0), 2), candidate(replica(1, 'decode', 5), 1), candidate(replica(2, 'decode', 1))];
  assert.deepEqual(routePair(pool, 4, 0, undefined, { tokens: 64, maxTokens: 64 }), { kind: 'colocated', replica: 2, matchedBlocks: 0, reason: 'short-prompt' });
  assert.deepEqual(routePair(pool, 4, 0, undefined, { tokens: 65, maxTokens: 64 }), { kind: 'disaggregated', prefill: 0, decode: 2, matchedBlocks: 2 });
  // 0 (the default): every sequence is disaggregated, however short.
  assert.deepEqual(routePair(pool, 1, 0, undefined, { tokens: 1, maxTokens: 0 }), { kind: 'disaggregated', prefill: 0, decode: 2, matchedBlocks: 2 });
  // No decode pool: the limit changes nothing (the sequence runs whole by the prefix policy, as before).
  assert.deepEqual(routePair([pool[0]], 4, 0, undefined, { tokens: 8, maxTokens: 64 }), { kind: 'colocated', replica: 0, matchedBlocks: 2, reason: 'no-decode' });
});

test('--pd-local-prefill without --pd is refused with a coded error', () => {
  const flags = { policy: 'prefix' as const, maxMigrations: 3, healthInterval: 250, healthTimeout: 2000, breakerCooldown: 1000, replicaWait: 10_000 };
  assert.throws(() => routingOf({ ...flags, pdLocalPrefill: 32 }), { code: 'TESSERA_ERR_INVALID_ARGUMENT', message: /only applies with --pd/ });
  assert.equal(routingOf({ ...flags, pd: true, pdLocalPrefill: 32 }).pdLocalPrefillTokens, 32);
  assert.equal(routingOf({ ...flags, pd: true }).pdLocalPrefillTokens, 0);
});
