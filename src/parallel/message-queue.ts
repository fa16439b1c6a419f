/**
 * An unbounded FIFO of messages with waiting receivers, which fails every
 * waiter (present and future) once its source is gone.
 */
import { TesseraError } from '../core/errors.js';

export class MessageQueue {
  private readonly messages: Uint8Array[] = [];
  private readonly waiters: { resolve: (m: Uint8Array) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | undefined;

  push(message: Uint8Array): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(message);
    else this.messages.push(message);
  }

  next(): Promise<Uint8Array> {
    const message = this.messages.shift();
    if (message) return Promise.resolve(message);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Messages already queued stay readable; waiting beyond them fails with `error`. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}

export function rankLost(rank: number, why: string): TesseraError {
  return new TesseraError('TESSERA_ERR_RANK_LOST', `rank ${rank} is gone (${why}); check that worker's log, then run the request again`);
}
