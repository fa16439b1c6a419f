/** A Transport that adds up the time spent waiting for messages (communication, as seen by compute). */
import type { Transport } from './transport.js';

export class TimedTransport implements Transport {
  /** Milliseconds spent awaiting receives since the last reset. */
  waitMs = 0;

  constructor(private readonly inner: Transport) {}

  get rank(): number {
    return this.inner.rank;
  }

  get size(): number {
    return this.inner.size;
  }

  get kind(): Transport['kind'] {
    return this.inner.kind;
  }

  send(peer: number, message: Uint8Array): Promise<void> {
    return this.inner.send(peer, message);
  }

  async receive(peer: number): Promise<Uint8Array> {
    const started = performance.now();
    try {
      return await this.inner.receive(peer);
    } finally {
      this.waitMs += performance.now() - started;
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
