/**
 * Decode bursts on a one-stage mesh: several decode steps per round trip to
 * the driver. Between two decode steps a rank sits idle while its reply goes
 * to the driver, the driver's engine core samples and schedules, and the
 * next step comes back: about 1.5 ms a token where the ranks fill the cores
 * of one host, a network round trip across hosts. Running ahead
 * (run-ahead.ts) hides that turnaround only where the driver has a core of
 * its own. A burst removes it: when every row of a decode step is picked
 * (token-pick.ts), the driver sends the uniforms of the next positions too
 * (`pick.burst`), every rank picks each step's ids itself, feeds them to the
 * next step, and the reporting rank replies once with every step's ids. The
 * driver (MeshTransformer) answers the engine core's following steps from
 * them while they ask for the same rows, without a message.
 *
 * Each step of a burst is the step the driver would have sent: the same ids,
 * positions, blocks and uniforms, so the same bits (DESIGN §4). A burst
 * step the driver does not use (its sequence stopped, or the batch changed)
 * leaves keys and values past its sequence's last token, which a later step
 * writes again before attention reads them, as with running ahead.
 */
import type { SequenceKv } from '../model/batch.js';
import type { Batch } from '../model/batch.js';
import { samePick, type PickedRows, type TokenPick } from '../engine/token-pick.js';
import type { KvLayout, StepRequest } from './rank-runner.js';
import { laterRequests, startsWithBlocks } from './run-ahead.js';

/** The most steps after the first that one burst computes (what a step message's schema admits). */
export const MAX_BURST = 64;

/**
 * Steps after the first that the ranks compute for `requests`: the fewest
 * uniforms any row brings, cut where a row's block table ends; 0 unless
 * every segment is a one-token decode with a pick.
 */
export function burstSteps(requests: readonly StepRequest[], layout: KvLayout): number {
  if (requests.length === 0) return 0;
  let steps = MAX_BURST;
  for (const { ids, rows, pick, positions, blockTable } of requests) {
    if (ids.length !== 1 || rows !== 'last' || !pick?.burst) return 0;
    const reach = blockTable.length * layout.blockSize - 1 - positions[0];
    steps = Math.min(steps, pick.burst.length, reach);
  }
  return Math.max(0, steps);
}

/** Step `step` (1-based) of a burst: each segment `step` positions on, fed `ids[s]`, picked with that position's uniform. */
export function burstRequests(requests: readonly StepRequest[], step: number, ids: Int32Array): StepRequest[] {
  return laterRequests(requests, step, ids, (pick) => pick.burst![step - 1]);
}

/** One later step of a burst for one sequence, as the driver's engine core will ask for it. */
interface BurstEntry {
  generation: number;
  /** The block table the burst ran with (a later step's must begin with it). */
  blockTable: Int32Array;
  position: number;
  /** The id this step is fed (the one picked before it). */
  input: number;
  pick: TokenPick;
  /** The id this step picked. */
  picked: number;
}

/**
 * The driver's side: the later steps of each sequence's last burst, in
 * order, keyed by the sequence's KV (one object per sequence in an engine
 * core). A step is answered here when every segment's next entry is the row
 * it asks for; any other step drops its sequences' entries and goes to the
 * ranks.
 */
export class BurstStash {
  private readonly entries = new WeakMap<SequenceKv, BurstEntry[]>();

  /** Keeps a burst's later steps: rows.following[j][s] is segment s's id at step j + 1. */
  keep(generation: number, batch: Batch, picks: readonly (TokenPick | undefined)[], rows: PickedRows): void {
    const following = rows.following ?? [];
    batch.segments.forEach((segment, s) => {
      const pick = picks[s];
      if (!pick?.burst || following.length === 0) return;
      const blockTable = Int32Array.from(segment.kv.blockTable);
      const { burst, next: _next, ...params } = pick;
      const entries: BurstEntry[] = [];
      for (let j = 0; j < following.length; j++) {
        const input = j === 0 ? rows.ids[s] : following[j - 1][s];
        entries.push({ generation, blockTable, position: segment.positions[0] + 1 + j, input, pick: { ...params, u: burst[j] }, picked: following[j][s] });
      }
      this.entries.set(segment.kv, entries);
    });
  }

  /** The rows of `batch` if the bursts hold every one (they are used up), else undefined (the batch's entries are dropped). */
  take(generation: number, batch: Batch, picks: readonly (TokenPick | undefined)[]): PickedRows | undefined {
    const ids = new Int32Array(batch.segments.length);
    const found = batch.segments.every((segment, s) => {
      const entry = this.entries.get(segment.kv)?.[0];
      if (!entry || entry.generation !== generation || segment.logits !== 'last' || segment.positions.length !== 1) return false;
      ids[s] = entry.picked;
      return entry.position === segment.positions[0] && entry.input === batch.ids[segment.start] && samePick(entry.pick, picks[s]) && startsWithBlocks(segment.kv.blockTable, entry.blockTable);
    });
    for (const segment of batch.segments) {
      if (found) this.entries.get(segment.kv)?.shift();
      else this.entries.delete(segment.kv);
    }
    return found ? { ids, logits: new Float32Array(0) } : undefined;
  }
}
