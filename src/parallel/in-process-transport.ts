/** Ranks that share one process (tests, and the single-process baseline of benchmarks). */
import { check } from '../core/errors.js';
import { MessageQueue, rankLost } from './message-queue.js';
import type { Transport } from './transport.js';

/** `size` connected transports, one per rank. */
export function inProcessMesh(size: number): InProcessTransport[] {
  check(Number.isInteger(size) && size >= 1, 'TESSERA_ERR_INVALID_ARGUMENT', `a mesh needs at least one rank, got ${size}`);
  /** queues[to][from] */
  const queues = Array.from({ length: size }, () => Array.from({ length: size }, () => new MessageQueue()));
  const closed = new Array<boolean>(size).fill(false);
  return Array.from({ length: size }, (_, rank) => new InProcessTransport(rank, size, queues, closed));
}

export class InProcessTransport implements Transport {
  readonly kind = 'in-process' as const;

  constructor(
    readonly rank: number,
    readonly size: number,
    private readonly queues: MessageQueue[][],
    private readonly closed: boolean[],
  ) {}

  async send(peer: number, message: Uint8Array): Promise<void> {
    this.checkPeer(peer);
    if (this.closed[peer]) throw rankLost(peer, 'its transport was closed');
    // A copy, so the sender may reuse its buffer at once, as with sockets.
    this.queues[peer][this.rank].push(message.slice());
  }

  receive(peer: number): Promise<Uint8Array> {
    this.checkPeer(peer);
    return this.queues[this.rank][peer].next();
  }

  receiveInto(peer: number, into: Uint8Array): Promise<void> {
    this.checkPeer(peer);
    return this.queues[this.rank][peer].nextInto(into);
  }

  async close(): Promise<void> {
    if (this.closed[this.rank]) return;
    this.closed[this.rank] = true;
    const error = rankLost(this.rank, 'its transport was closed');
    for (let peer = 0; peer < this.size; peer++) if (peer !== this.rank) this.queues[peer][this.rank].fail(error);
  }

  private checkPeer(peer: number): void {
    check(Number.isInteger(peer) && peer >= 0 && peer < this.size && peer !== this.rank, 'TESSERA_ERR_INVALID_ARGUMENT', `rank ${this.rank} cannot talk to rank ${peer} in a mesh of ${this.size}`);
  }
}
