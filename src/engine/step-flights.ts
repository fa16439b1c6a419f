/**
 * Forward passes in flight at once, for a model runner whose stages can work
 * on different sequences at the same time (a pipeline-parallel mesh: stage 0
 * computes one group's next token while stage 1 finishes another group's).
 * The core keeps up to `groups` batches of disjoint sequences in flight and
 * samples each as it lands, so no stage waits for the whole pipeline to
 * drain between steps. A sequence's own computation is unchanged by which
 * group it is in (DESIGN §4), so outputs are the same bits.
 *
 * Bookkeeping only: which sequences are busy (their group has not landed),
 * which must leave once it lands (cancelled or detached meanwhile: their
 * blocks stay theirs until then), and an epoch that discards the results of
 * groups launched before every sequence's state was reset (KV lost, failAll).
 */
import type { ScheduledChunk } from './scheduler.js';
import type { PickedRows } from './token-pick.js';
import type { Sequence } from './sequence.js';

/** A forward pass's result (its rows: picked ids, or logits, token-pick.ts): it never rejects. */
export type Landing = { rows: PickedRows; error?: undefined } | { error: unknown; rows?: undefined };

export interface Flight {
  chunks: ScheduledChunk[];
  batchTokens: number;
  landing: Promise<Landing>;
  /** The core's epoch at launch: a flight of an older epoch lands ignored. */
  epoch: number;
}

export class StepFlights {
  private readonly queue: Flight[] = [];
  /** Each busy sequence's flight (a sequence in an ignored flight may fly again in a newer one). */
  private readonly flightOf = new Map<Sequence, Flight>();
  /** Sequences retired while busy: they leave when their flight lands. */
  private readonly leaving = new Set<Sequence>();
  epoch = 0;

  get size(): number {
    return this.queue.length;
  }

  /** Sequences the scheduler must not give another chunk now. */
  readonly excluded = { has: (sequence: Sequence): boolean => this.flightOf.has(sequence) || this.leaving.has(sequence) };

  isBusy(sequence: Sequence): boolean {
    return this.flightOf.has(sequence);
  }

  launch(chunks: ScheduledChunk[], batchTokens: number, forward: Promise<PickedRows>): void {
    const landing: Promise<Landing> = forward.then((rows) => ({ rows }), (error: unknown) => ({ error }));
    const flight = { chunks, batchTokens, landing, epoch: this.epoch };
    for (const chunk of chunks) this.flightOf.set(chunk.sequence, flight);
    this.queue.push(flight);
  }

  /** The oldest flight, once landed; its sequences are free again. */
  async land(): Promise<{ flight: Flight; result: Landing } | undefined> {
    const flight = this.queue.shift();
    if (!flight) return undefined;
    const result = await flight.landing;
    for (const chunk of flight.chunks) {
      if (this.flightOf.get(chunk.sequence) === flight) this.flightOf.delete(chunk.sequence);
    }
    return { flight, result };
  }

  /** A busy sequence to retire once its flight lands. */
  leaveLater(sequence: Sequence): void {
    this.leaving.add(sequence);
  }

  /** Leaving sequences that are no longer busy (their flight landed): the caller retires them. */
  takeLeft(): Sequence[] {
    const left = [...this.leaving].filter((sequence) => !this.flightOf.has(sequence));
    for (const sequence of left) this.leaving.delete(sequence);
    return left;
  }

  /**
   * Every sequence's state is being reset: flights in the air land ignored and
   * nothing is busy. Returns the leaving sequences, for the caller to retire now.
   */
  reset(): Sequence[] {
    this.epoch++;
    this.flightOf.clear();
    const leaving = [...this.leaving];
    this.leaving.clear();
    return leaving;
  }
}
