/**
 * A replica as the router sees it, as data: its circuit breaker and the
 * load it last reported. Changes are events (past tense) folded by one pure
 * function each (DESIGN §9), so the health logic is tested with hand-built
 * states and a clock, no processes.
 *
 * Breaker: `closed` (routable) → a failure opens it → `open` (not routed;
 * still polled) → once its polls are healthy again and `cooldownMs` has
 * passed since it opened, `half-open`: exactly one trial sequence may go there → the trial's
 * first output closes it, a failure opens it again.
 */

import type { ReplicaRole } from '../serve/pd-protocol.js';

/** The replica's index in the router's --replica list, branded so it is never mixed with other numbers. */
export type ReplicaId = number & { readonly __brand: 'ReplicaId' };

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface ReplicaState {
  id: ReplicaId;
  url: string;
  breaker: BreakerState;
  /** When the breaker last opened (ms, the router's clock). */
  openedAt: number;
  /** Half-open: a trial sequence is out and has not answered yet. */
  trialOut: boolean;
  /** The replica's own health (reachable, loaded, not draining, mesh whole), from its polls. */
  healthy: boolean;
  draining: boolean;
  /** Sequences this router has in flight there. */
  inFlight: number;
  /** Running + waiting sequences the replica last reported (all its clients, not only this router). */
  reportedLoad: number;
  /** KV blocks in use / all blocks, last reported. */
  kvUse: number;
  /** KV blocks free (cached prefixes nobody holds count as free), last reported. */
  blocksFree: number;
  /** What a --pd router sends it (prefill, decode, both), and whether its KV can move at all. */
  role: ReplicaRole;
  kvTransfer: boolean;
  /** Sequences the replica holds before it answers 429 (0 until it reports). */
  capacity: number;
  /** When its load was last reported (a poll answered). */
  answeredAt: number;
  /** What went wrong last, for logs. */
  problem: string;
}

export type ReplicaEvent =
  | { type: 'HealthReported'; healthy: boolean; draining: boolean; status: string; at: number }
  | { type: 'LoadReported'; running: number; waiting: number; blocksUsed: number; numBlocks: number; capacity: number; at: number; pd?: { role: ReplicaRole; kvTransfer: boolean } }
  | { type: 'SequenceRouted'; trial: boolean }
  | { type: 'SequenceAnswered'; trial: boolean }
  /** A sequence there finished, failed or was cancelled; a trial that never answered frees the trial slot. */
  | { type: 'SequenceEnded'; trial: boolean }
  | { type: 'ReplicaFailed'; why: string; at: number }
  | { type: 'CooldownChecked'; at: number; cooldownMs: number };

export function initialReplica(id: ReplicaId, url: string): ReplicaState {
  // Closed but unhealthy until its first poll answers.
  return { id, url, breaker: 'closed', openedAt: 0, trialOut: false, healthy: false, draining: false, inFlight: 0, reportedLoad: 0, kvUse: 0, blocksFree: 0, role: 'both', kvTransfer: false, capacity: 0, answeredAt: -Infinity, problem: '' };
}

export function applyReplicaEvent(state: ReplicaState, event: ReplicaEvent): ReplicaState {
  switch (event.type) {
    case 'HealthReported':
      return healthReported(state, event);
    case 'LoadReported':
      return {
        ...state,
        reportedLoad: event.running + event.waiting,
        kvUse: event.numBlocks > 0 ? event.blocksUsed / event.numBlocks : 0,
        blocksFree: event.numBlocks - event.blocksUsed,
        role: event.pd?.role ?? 'both',
        kvTransfer: event.pd?.kvTransfer ?? false,
        capacity: event.capacity,
        answeredAt: event.at,
      };
    case 'SequenceRouted':
      return { ...state, inFlight: state.inFlight + 1, trialOut: state.trialOut || event.trial };
    case 'SequenceAnswered':
      return event.trial && state.breaker === 'half-open' ? { ...state, breaker: 'closed', trialOut: false } : state;
    case 'SequenceEnded':
      return { ...state, inFlight: Math.max(0, state.inFlight - 1), trialOut: event.trial ? false : state.trialOut };
    case 'ReplicaFailed':
      return open({ ...state, problem: event.why }, event.at);
    case 'CooldownChecked':
      return state.breaker === 'open' && state.healthy && state.answeredAt > state.openedAt && event.at - state.openedAt >= event.cooldownMs ? { ...state, breaker: 'half-open', trialOut: false } : state;
  }
}

/** A replica that stops being healthy (silent, lost a rank) opens its breaker; one that is draining only stops taking work. */
function healthReported(state: ReplicaState, { healthy, draining, status, at }: { healthy: boolean; draining: boolean; status: string; at: number }): ReplicaState {
  const next = { ...state, healthy, draining, problem: healthy ? state.problem : status };
  return !healthy && !draining && state.breaker !== 'open' ? open(next, at) : next;
}

function open(state: ReplicaState, at: number): ReplicaState {
  return { ...state, breaker: 'open', openedAt: at, trialOut: false };
}

/** Whether a new sequence may go there: healthy, not full; a half-open replica takes one trial at a time. */
export function isRoutable(state: ReplicaState): boolean {
  if (!state.healthy || state.draining) return false;
  if (state.capacity > 0 && state.inFlight >= state.capacity) return false;
  if (state.breaker === 'closed') return true;
  return state.breaker === 'half-open' && !state.trialOut;
}

/** The load the router balances: what it knows it sent there, or what the replica says it holds, whichever is more. */
export function loadOf(state: ReplicaState): number {
  return Math.max(state.inFlight, state.reportedLoad);
}
