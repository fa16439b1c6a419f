/**
 * Where a sequence goes: a pure function of the routable replicas, what
 * the prefix index believes each holds of this prompt, and their loads.
 *
 * - `prefix` (default): the replica holding the most leading blocks of the
 *   prompt, among those whose load passes the balance gate — at most
 *   `balanceSlack` sequences above the least loaded replica, or (when
 *   loads are high) at most `balanceRatio` × its load — so one hot system
 *   prompt cannot pile every request on one replica, while ordinary
 *   unevenness does not break cache affinity (a recomputed prefix costs
 *   more than a slightly longer queue); ties and prompts nobody holds go to
 *   the least loaded.
 * - `least-load`: fewest sequences (in flight or reported), then least KV use.
 * - `round-robin`: each in turn, ignoring load and prefixes.
 * Ties after all that rotate with `turn`, so equal replicas share the work.
 */
import { loadOf, type ReplicaId, type ReplicaState } from './replica-state.js';

export const ROUTING_POLICIES = ['prefix', 'least-load', 'round-robin'] as const;
export type RoutingPolicy = (typeof ROUTING_POLICIES)[number];

export interface Candidate {
  replica: ReplicaState;
  /** Leading full blocks of the prompt the replica is believed to hold. */
  matchedBlocks: number;
}

export interface BalanceGate {
  /** A replica may be this many sequences above the least loaded one and still win on its prefix. */
  balanceSlack: number;
  /** ... and at most this many times its load. */
  balanceRatio: number;
}

export const DEFAULT_BALANCE: BalanceGate = { balanceSlack: 8, balanceRatio: 1.5 };

export interface RouteDecision {
  replica: ReplicaId;
  matchedBlocks: number;
  /** Why this replica: its prefix, its load, or its turn. */
  reason: 'prefix' | 'least-load' | 'round-robin';
}

/** The replica for one sequence, or undefined when there is no candidate. */
export function route(candidates: readonly Candidate[], policy: RoutingPolicy, turn: number, gate: BalanceGate = DEFAULT_BALANCE): RouteDecision | undefined {
  if (candidates.length === 0) return undefined;
  // Rotate first, so every later tie-break (stable sort, first of equals) favours a different replica each turn.
  const start = turn % candidates.length;
  const rotated = [...candidates.slice(start), ...candidates.slice(0, start)];
  if (policy === 'round-robin') return decision(rotated[0], 'round-robin');
  const byLoad = [...rotated].sort(compareLoad);
  if (policy === 'least-load') return decision(byLoad[0], 'least-load');
  const least = loadOf(byLoad[0].replica);
  const limit = Math.max(least + gate.balanceSlack, least * gate.balanceRatio);
  const best = byLoad.filter((candidate) => loadOf(candidate.replica) <= limit).reduce((a, b) => (b.matchedBlocks > a.matchedBlocks ? b : a));
  return best.matchedBlocks > 0 ? decision(best, 'prefix') : decision(byLoad[0], 'least-load');
}

function compareLoad(a: Candidate, b: Candidate): number {
  return loadOf(a.replica) - loadOf(b.replica) || a.replica.kvUse - b.replica.kvUse;
}

function decision(candidate: Candidate, reason: RouteDecision['reason']): RouteDecision {
  return { replica: candidate.replica.id, matchedBlocks: candidate.matchedBlocks, reason };
}
