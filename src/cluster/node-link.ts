/**
 * The coordinator's control connection to one node: sends, and a reading
 * loop that hands replies a rollout waits for (`listening`, `ready`) to
 * their waiter and everything else to the coordinator.
 */
import type { ChildProcess } from 'node:child_process';
import { TesseraError } from '../core/errors.js';
import type { FramedSocket } from '../parallel/framed-socket.js';
import type { NodeId } from './cluster-state.js';
import { decodeControl, encodeControl, type ControlMessage, type Envelope } from './control-message.js';

type Reply = Extract<ControlMessage, { type: 'listening' | 'ready' }>;

interface Waiter {
  resolve: (message: Reply) => void;
  reject: (error: Error) => void;
}

export class NodeLink {
  private readonly waiters = new Map<string, Waiter>();
  /** Replies that came before anyone waited for them. */
  private readonly early = new Map<string, Reply>();
  private ended: Error | undefined;
  private markClosed: () => void = () => undefined;
  /** Resolves once the reading loop has ended (the node hung up or was dropped). */
  readonly closed = new Promise<void>((resolve) => (this.markClosed = resolve));

  constructor(
    readonly id: NodeId,
    private readonly control: FramedSocket,
    /** The process, when this coordinator forked it. */
    readonly child?: ChildProcess,
  ) {}

  send(message: ControlMessage, body?: Uint8Array): Promise<void> {
    return this.control.send(encodeControl(message, body));
  }

  /** An already encoded message (a step goes to every rank as one frame). */
  sendFrame(frame: Uint8Array): Promise<void> {
    return this.control.send(frame);
  }

  /** The node's `type` reply for `generation`; rejects when the node fails that generation or goes away. */
  expect<T extends Reply['type']>(type: T, generation: number): Promise<Extract<Reply, { type: T }>> {
    const key = `${type}/${generation}`;
    // Replies of generations given up on (a rank finished loading after an abort) are dropped.
    for (const stale of this.early.keys()) if (Number(stale.split('/')[1]) < generation) this.early.delete(stale);
    const early = this.early.get(key);
    if (early) {
      this.early.delete(key);
      return Promise.resolve(early as Extract<Reply, { type: T }>);
    }
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiters.set(key, { resolve: resolve as (message: Reply) => void, reject }));
  }

  /** Fails what waits on `generation` (the node said it cannot run it). */
  failGeneration(generation: number, error: Error): void {
    for (const [key, waiter] of this.waiters) {
      if (key.endsWith(`/${generation}`)) {
        this.waiters.delete(key);
        waiter.reject(error);
      }
    }
  }

  /** Reads until the connection ends, then fails every waiter; resolves with why it ended. */
  async read(onMessage: (envelope: Envelope) => void): Promise<string> {
    for (;;) {
      let envelope: Envelope;
      try {
        envelope = decodeControl(await this.control.receive());
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        this.end(new TesseraError('TESSERA_ERR_RANK_LOST', `node ${this.id} went away (${why})`));
        this.markClosed();
        return why;
      }
      const { message } = envelope;
      if (message.type === 'listening' || message.type === 'ready') this.reply(message);
      else onMessage(envelope);
    }
  }

  close(): void {
    this.control.close();
    this.end(new TesseraError('TESSERA_ERR_RANK_LOST', `node ${this.id} was dropped from the mesh`));
  }

  private reply(message: Reply): void {
    const key = `${message.type}/${message.generation}`;
    const waiter = this.waiters.get(key);
    if (!waiter) {
      this.early.set(key, message);
      return;
    }
    this.waiters.delete(key);
    waiter.resolve(message);
  }

  private end(error: Error): void {
    this.ended ??= error;
    for (const waiter of this.waiters.values()) waiter.reject(error);
    this.waiters.clear();
  }
}
