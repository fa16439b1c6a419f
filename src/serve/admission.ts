/**
 * Which generation runs a server holds, and whether it takes new ones. A
 * drain (SIGTERM) stops admissions at once — new requests get a 503 with
 * TESSERA_ERR_DRAINING, which a router reads as "send it elsewhere" — lets
 * the runs in flight finish, and after a grace period ends the rest with
 * that same retryable error, so a router moves them to another replica
 * instead of losing them.
 */
import { TesseraError } from '../core/errors.js';

/** A run the server can end early with an error (ChoiceRun, a replica stream). */
export interface Abortable {
  abort(error: TesseraError): void;
}

export class Admission {
  private readonly runs = new Set<Abortable>();
  private idle: (() => void)[] = [];
  private drainingSince: number | undefined;

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  get activeRuns(): number {
    return this.runs.size;
  }

  /** Throws the 503 a draining server answers with. */
  check(): void {
    if (this.draining) throw new TesseraError('TESSERA_ERR_DRAINING', 'this server is shutting down and takes no new requests; send the request to another replica');
  }

  /** Holds a run until the returned function is called (when its response has ended). */
  track(run: Abortable): () => void {
    this.runs.add(run);
    return () => {
      this.runs.delete(run);
      if (this.runs.size === 0) for (const resolve of this.idle.splice(0)) resolve();
    };
  }

  /**
   * Stops admissions, waits up to `graceMs` for the runs in flight, then
   * aborts the rest with a retryable error and waits (up to `flushMs`) for
   * their responses to end. Resolves with how many runs were aborted.
   */
  async drain(graceMs: number, flushMs = 2_000): Promise<number> {
    this.drainingSince ??= Date.now();
    await this.untilIdle(graceMs);
    const left = [...this.runs];
    const error = new TesseraError('TESSERA_ERR_DRAINING', `this server shut down before the request finished (drain grace of ${graceMs} ms); send it again, to another replica`);
    for (const run of left) run.abort(error);
    if (left.length > 0) await this.untilIdle(flushMs);
    return left.length;
  }

  private untilIdle(timeoutMs: number): Promise<void> {
    if (this.runs.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
