/**
 * A Transport that adds up the time spent waiting for messages
 * (communication, as seen by compute) and, when tracing, records a span per
 * message: sends with their transfer time, receives with their wait, each
 * with its peer and bytes (Chrome trace events, one process per rank).
 */
import { epochMicros, type TraceEvent } from '../core/trace-event.js';
import type { Transport } from './transport.js';

export class TimedTransport implements Transport {
  /**
   * Milliseconds with at least one receive pending since the last reset.
   * Counted once however many receives overlap (collectives post several at
   * a time), so compute = step time - waitMs stays meaningful.
   */
  waitMs = 0;
  /** Milliseconds inside sends (a send resolves once its bytes are handed over). */
  sendMs = 0;
  private pending = 0;
  private waitingSince = 0;

  /** `spans`, when given, collects a trace event per message. */
  constructor(
    private readonly inner: Transport,
    readonly spans?: TraceEvent[],
  ) {}

  get rank(): number {
    return this.inner.rank;
  }

  get size(): number {
    return this.inner.size;
  }

  get kind(): Transport['kind'] {
    return this.inner.kind;
  }

  async send(peer: number, message: Uint8Array): Promise<void> {
    const started = epochMicros();
    await this.inner.send(peer, message);
    this.sendMs += (epochMicros() - started) / 1000;
    this.spans?.push({ name: 'send', ph: 'X', ts: started, dur: epochMicros() - started, pid: this.rank, tid: 1, args: { peer, bytes: message.byteLength } });
  }

  async receive(peer: number): Promise<Uint8Array> {
    const started = this.startWaiting();
    let bytes = 0;
    try {
      const message = await this.inner.receive(peer);
      bytes = message.byteLength;
      return message;
    } finally {
      this.waited(started, peer, bytes);
    }
  }

  async receiveInto(peer: number, into: Uint8Array): Promise<void> {
    const started = this.startWaiting();
    try {
      await this.inner.receiveInto(peer, into);
    } finally {
      this.waited(started, peer, into.byteLength);
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private startWaiting(): number {
    const now = epochMicros();
    if (this.pending++ === 0) this.waitingSince = now;
    return now;
  }

  private waited(started: number, peer: number, bytes: number): void {
    const now = epochMicros();
    if (--this.pending === 0) this.waitMs += (now - this.waitingSince) / 1000;
    const waited = now - started;
    this.spans?.push({ name: 'receive (wait)', ph: 'X', ts: started, dur: waited, pid: this.rank, tid: 2, args: { peer, bytes } });
  }
}
