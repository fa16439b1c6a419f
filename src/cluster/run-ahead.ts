/**
 * Running ahead on a one-stage mesh. Between two decode steps a rank sits
 * idle while its reply goes to the driver, the driver's engine core samples
 * and schedules, and the next step comes back (about 2 ms a token on one
 * host, a network round trip across hosts). When every row of a step was
 * picked on the ranks (token-pick.ts) and the driver says it expects to
 * send those sequences again (each pick carries `next`, the request's
 * uniform at the following position), the ranks already hold everything
 * the next step needs: every tensor-parallel rank has the whole logits
 * after the LM head's all-gather, so each picks the same ids itself, and
 * computes the next step at once, after sending its reply. When that step
 * arrives and asks for the same thing (the same sequences, blocks, ids and
 * picks, or a subset of them: a row's result does not depend on the rest of
 * its batch, DESIGN §4), its rows are already there; anything else is
 * computed as usual.
 *
 * A step computed ahead and not asked for leaves keys and values at one
 * position past its sequences' last token: the same bits the real step
 * writes there, or, for a sequence that stopped, slots past its end in
 * blocks it no longer holds, which a later owner writes before attention
 * reads them.
 */
import type { StepBreakdown } from '../parallel/step-clock.js';
import { samePick, type PickedRows, type TokenPick } from '../engine/token-pick.js';
import type { KvLayout, StepRequest } from './rank-runner.js';

/** A step a rank computed before it was asked for. */
export interface AheadStep {
  generation: number;
  layout: KvLayout;
  requests: StepRequest[];
  /** Picked ids of every row (on every rank); logits empty. */
  rows: PickedRows;
  times: StepBreakdown;
}

/** Ranks forked on the driver's machine: how many, and the threads of each (0: the rank's default, every core). */
export interface ForkedRanks {
  ranks: number;
  threadsPerRank: number;
}

/**
 * Whether a one-stage mesh's ranks compute ahead: TESSERA_RUN_AHEAD `1` or
 * `0` decides; unset, yes, unless the ranks were forked on this machine and
 * their threads fill its cores. Running ahead hides the driver's turnaround
 * behind the ranks' compute, which pays where the driver has a core of its
 * own (or the turnaround is a network round trip); where the ranks fill
 * every core, that turnaround runs on a core a rank is using, and the
 * reporting rank's reply starts each step out of step with the others (on
 * the 2-core machine, tp 2 over shared rows ran faster without it in 18 of
 * 25 interleaved rounds: a small gain).
 */
export function runAheadWanted(setting: string | undefined, forked: ForkedRanks | undefined, cores: number): boolean {
  if (setting === '0') return false;
  if (setting === '1' || !forked) return true;
  const threads = forked.threadsPerRank > 0 ? forked.threadsPerRank : cores;
  return forked.ranks * threads < cores;
}

/**
 * Whether the step after `requests` may be computed ahead: every segment a
 * one-token decode whose pick has a next uniform, and whose block table
 * already holds the next position.
 */
export function canRunAhead(requests: readonly StepRequest[], layout: KvLayout): boolean {
  return (
    requests.length > 0 &&
    requests.every(({ ids, positions, rows, pick, blockTable }) => ids.length === 1 && rows === 'last' && pick?.next !== undefined && positions[0] + 1 < blockTable.length * layout.blockSize)
  );
}

/** The step after `requests`: each segment one position on, fed the id picked for it (ids: [segments]). */
export function nextRequests(requests: readonly StepRequest[], ids: Int32Array): StepRequest[] {
  return laterRequests(requests, 1, ids, (pick) => pick.next!);
}

/**
 * The step `offset` positions after `requests` (one-token decodes, each
 * picked): each segment fed ids[s] and picked with `uniform(its pick)`, the
 * uniform of that position; the pick says nothing of later positions.
 */
export function laterRequests(requests: readonly StepRequest[], offset: number, ids: Int32Array, uniform: (pick: TokenPick) => number): StepRequest[] {
  return requests.map((request, s) => {
    const { next: _next, burst: _burst, ...pick } = request.pick!;
    return {
      blockTable: request.blockTable,
      ids: Int32Array.of(ids[s]),
      positions: Int32Array.of(request.positions[0] + offset),
      rows: 'last',
      pick: { ...pick, u: uniform(request.pick!) },
    };
  });
}

/** Whether `table` begins with every block of `prefix` (a sequence's block table only grows while it runs). */
export function startsWithBlocks(table: Int32Array, prefix: Int32Array): boolean {
  if (table.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (table[i] !== prefix[i]) return false;
  return true;
}

/**
 * For each segment of `step`, the index of the segment of `ahead` that
 * computed the same row; undefined when any segment has none (then the step
 * is computed as usual).
 */
export function matchAhead(ahead: AheadStep, generation: number, layout: KvLayout, step: readonly StepRequest[]): number[] | undefined {
  if (ahead.generation !== generation || ahead.layout.numBlocks !== layout.numBlocks || ahead.layout.blockSize !== layout.blockSize) return undefined;
  const used = new Set<number>();
  const order: number[] = [];
  for (const request of step) {
    const index = ahead.requests.findIndex((candidate, i) => !used.has(i) && sameRow(candidate, request));
    if (index < 0) return undefined;
    used.add(index);
    order.push(index);
  }
  return order;
}

/** The rows of `ahead` in the order `matchAhead` found (every row picked: ids only). */
export function rowsInOrder(rows: PickedRows, order: readonly number[]): PickedRows {
  return { ids: Int32Array.from(order, (index) => rows.ids[index]), logits: new Float32Array(0) };
}

/** Whether two segments compute the same row: same blocks up to the ahead one's, position, id and pick (its next uniform aside). */
function sameRow(ahead: StepRequest, request: StepRequest): boolean {
  if (request.rows !== 'last' || request.ids.length !== 1 || request.ids[0] !== ahead.ids[0] || request.positions[0] !== ahead.positions[0]) return false;
  return startsWithBlocks(request.blockTable, ahead.blockTable) && ahead.pick !== undefined && samePick(ahead.pick, request.pick);
}
