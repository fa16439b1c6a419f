/**
 * An unbounded FIFO of messages with waiting receivers, which fails every
 * waiter (present and future) once its source is gone. A receiver may name
 * the buffer its message goes into (`nextInto`); a source that sees such a
 * receiver waiting (`destination`) can write the message there as it
 * arrives, so no buffer is allocated for it.
 */
import { TesseraError } from '../core/errors.js';

interface Waiter {
  /** Where the message goes, when the receiver gave a place. */
  into?: Uint8Array;
  resolve: (message: Uint8Array) => void;
  reject: (error: Error) => void;
}

export class MessageQueue {
  private readonly messages: Uint8Array[] = [];
  private readonly waiters: Waiter[] = [];
  private failure: Error | undefined;

  /**
   * Delivers a message. When the waiting receiver named a destination and
   * `message` is not already it, the bytes are copied there.
   */
  push(message: Uint8Array): void {
    const waiter = this.waiters.shift();
    if (!waiter) this.messages.push(message);
    else if (waiter.into === undefined) waiter.resolve(message);
    else deliverInto(message, waiter);
  }

  next(): Promise<Uint8Array> {
    const message = this.messages.shift();
    if (message) return Promise.resolve(message);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** The next message, written into `into` (its length must be the message's). */
  nextInto(into: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { into, resolve: () => resolve(), reject };
      const message = this.messages.shift();
      if (message) deliverInto(message, waiter);
      else if (this.failure) reject(this.failure);
      else this.waiters.push(waiter);
    });
  }

  /**
   * The buffer the next message should be written into: the first waiter's,
   * when it named one and no earlier message is queued ahead of it.
   */
  get destination(): Uint8Array | undefined {
    return this.messages.length === 0 ? this.waiters[0]?.into : undefined;
  }

  /** Whether a receiver is waiting (so the source should keep reading). */
  get hasWaiters(): boolean {
    return this.waiters.length > 0;
  }

  /** Messages already queued stay readable; waiting beyond them fails with `error`. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}

function deliverInto(message: Uint8Array, waiter: Waiter): void {
  const into = waiter.into as Uint8Array;
  if (message.byteLength !== into.byteLength) {
    // Both sides run the same collectives in the same order, so a size mismatch is a bug, not bad input.
    waiter.reject(new TesseraError('TESSERA_ERR_INTERNAL', `a message of ${message.byteLength} bytes arrived where ${into.byteLength} were expected; the ranks ran different collectives`));
    return;
  }
  if (message !== into) into.set(message);
  waiter.resolve(into);
}

export function rankLost(rank: number, why: string): TesseraError {
  return new TesseraError('TESSERA_ERR_RANK_LOST', `rank ${rank} is gone (${why}); check that worker's log, then run the request again`);
}
