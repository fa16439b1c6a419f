/**
 * Where a sequence goes under `--pd` (disaggregated prefill and decode): a
 * pure function of the routable replicas, what the prefix index believes
 * each caches of the prompt, their loads and their free KV blocks.
 *
 * - The decode replica: among those that decode (role decode or both) and
 *   can take KV, the ones with room for the prompt's blocks, least loaded
 *   first (a decode replica's load is its running streams), then most room.
 * - The prefill replica: among those that prefill (role prefill or both)
 *   and can send KV, other than the decode replica, the `prefix` policy
 *   (longest cached prefix within the balance gate, else least loaded).
 * - When either pool is empty (replicas down, or none can move KV) the
 *   sequence runs whole on one replica, chosen by the prefix policy among
 *   all: nothing waits for a pool that is not there.
 * - With a local prefill limit (`router --pd-local-prefill N`), a sequence
 *   with at most N tokens to prefill runs whole on the decode replica it
 *   would have gone to: a short prompt's prefill costs that replica one
 *   small chunk, less than a queue behind long prompts on a prefill replica
 *   and a KV transfer (conditional disaggregation, as NVIDIA Dynamo does).
 */
import { loadOf, type ReplicaId, type ReplicaState } from './replica-state.js';
import { DEFAULT_BALANCE, route, type BalanceGate, type Candidate } from './routing-policy.js';

export type PdDecision =
  /** Prefill on one replica, KV to the other, decode there. */
  | { kind: 'disaggregated'; prefill: ReplicaId; decode: ReplicaId; matchedBlocks: number }
  /** The whole sequence on one replica. */
  | { kind: 'colocated'; replica: ReplicaId; matchedBlocks: number; reason: 'no-prefill' | 'no-decode' | 'short-prompt' };

/** A sequence's tokens to prefill, and the most a decode replica prefills itself (0: none). */
export interface LocalPrefill {
  tokens: number;
  maxTokens: number;
}

export function prefills(state: ReplicaState): boolean {
  return state.kvTransfer && state.role !== 'decode';
}

export function decodes(state: ReplicaState): boolean {
  return state.kvTransfer && state.role !== 'prefill';
}

/** The pair (or the one replica) for a sequence needing `neededBlocks` KV blocks, or undefined with no candidate at all. */
export function routePair(candidates: readonly Candidate[], neededBlocks: number, turn: number, gate: BalanceGate = DEFAULT_BALANCE, local?: LocalPrefill): PdDecision | undefined {
  if (candidates.length === 0) return undefined;
  const decode = chooseDecode(candidates.filter((candidate) => decodes(candidate.replica)), neededBlocks, turn);
  if (decode && local && local.tokens <= local.maxTokens) return { kind: 'colocated', replica: decode.replica.id, matchedBlocks: decode.matchedBlocks, reason: 'short-prompt' };
  const prefillPool = candidates.filter((candidate) => prefills(candidate.replica) && candidate.replica.id !== decode?.replica.id);
  const prefill = route(prefillPool, 'prefix', turn, gate);
  if (decode && prefill) return { kind: 'disaggregated', prefill: prefill.replica, decode: decode.replica.id, matchedBlocks: prefill.matchedBlocks };
  const whole = route(candidates, 'prefix', turn, gate)!;
  return { kind: 'colocated', replica: whole.replica, matchedBlocks: whole.matchedBlocks, reason: decode ? 'no-prefill' : 'no-decode' };
}

/** Least loaded among those with room (all of them when none has: the reservation then waits for room), then most free blocks; ties rotate. */
function chooseDecode(pool: readonly Candidate[], neededBlocks: number, turn: number): Candidate | undefined {
  if (pool.length === 0) return undefined;
  const roomy = pool.filter((candidate) => candidate.replica.blocksFree >= neededBlocks);
  const from = roomy.length > 0 ? roomy : pool;
  const start = turn % from.length;
  const rotated = [...from.slice(start), ...from.slice(0, start)];
  return rotated.sort((a, b) => loadOf(a.replica) - loadOf(b.replica) || b.replica.blocksFree - a.replica.blocksFree)[0];
}
