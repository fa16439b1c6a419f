/**
 * The decode side's reservations that a prefill engine may still write
 * into directly (kv-direct.ts) although the decode side has given them up
 * (the transfer failed, timed out or was cancelled before it completed).
 * Their blocks go back to the pool only when no write can land in them any
 * more:
 * - the writer answered `revoked` (its engine handles the revoke between
 *   two of its writes, so nothing of the transfer follows it), or
 * - the writer's process is gone (its link closed first: a SIGKILLed
 *   prefill replica, or one stopped long enough that the link broke, which
 *   is held until it is really gone, since a stopped process resumes).
 * Pure bookkeeping: the caller sends the revokes, frees the blocks and
 * says which processes are alive.
 */
import type { TransferId } from '../engine/kv-messages.js';

export interface DirectHoldsOptions {
  /** Frees the blocks of `transfer` (the decode engine's 'unhold'). */
  unhold: (transfer: TransferId) => void;
  /** Asks the writer of `ring` to stop writing `transfer`. */
  revoke: (ring: string, transfer: TransferId) => void;
  /** Whether process `pid` still exists. */
  alive: (pid: number) => boolean;
  /** How often a closed link's writer is looked for (ms). */
  pollMs?: number;
}

interface Ring {
  /** The writer's process, when known. */
  pid: number | undefined;
  open: boolean;
  held: Set<TransferId>;
}

export class DirectHolds {
  private readonly rings = new Map<string, Ring>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: DirectHoldsOptions) {}

  /** A link's ring is in use by a writer in process `pid` (undefined: unknown, so nothing is held for it once its link is gone). */
  opened(ring: string, pid: number | undefined): void {
    const entry = this.rings.get(ring);
    if (entry) entry.pid ??= pid;
    else this.rings.set(ring, { pid, open: true, held: new Set() });
  }

  /** The decode engine holds `transfer`'s blocks back: the writer of `ring` is asked to stop, or waited for. */
  held(transfer: TransferId, ring: string): void {
    const entry = this.rings.get(ring);
    if (!entry) return this.options.unhold(transfer); // never had a writer here: nothing can land
    entry.held.add(transfer);
    if (entry.open) this.options.revoke(ring, transfer);
    else this.poll();
  }

  /** The writer of `ring` writes no more of `transfer`. */
  revoked(ring: string, transfer: TransferId): void {
    if (this.rings.get(ring)?.held.delete(transfer)) this.options.unhold(transfer);
  }

  /**
   * The link of `ring` closed: what it holds, and what the decode engine
   * gives up after this (its link's transfers abort now), waits for the
   * writer's process to end.
   */
  closed(ring: string): void {
    const entry = this.rings.get(ring);
    if (!entry) return;
    entry.open = false;
    this.poll();
  }

  /** Transfers whose blocks are still held. */
  get count(): number {
    let count = 0;
    for (const entry of this.rings.values()) count += entry.held.size;
    return count;
  }

  /** Stops looking for writers (the replica is closing). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Frees what closed links' ended writers held (and forgets those links); looks again later while some are alive. */
  private poll(): void {
    for (const [ring, entry] of this.rings) {
      if (entry.open || (entry.pid !== undefined && this.options.alive(entry.pid))) continue;
      this.rings.delete(ring);
      for (const transfer of entry.held) this.options.unhold(transfer);
    }
    const waiting = [...this.rings.values()].some((entry) => !entry.open && entry.held.size > 0);
    clearTimeout(this.timer);
    this.timer = waiting ? setTimeout(() => this.poll(), this.options.pollMs ?? 500) : undefined;
    this.timer?.unref();
  }
}

/** Whether process `pid` exists (signal 0 checks without sending; EPERM: it exists, another user's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
