/**
 * The Transport of ranks on one host: byte rings in shared memory
 * (native/src/comm/shm-mesh.cc), one per direction per pair of ranks, each
 * in the receiver's segment. A message is an 8-byte length then its bytes.
 * Sends and receives copy straight between the caller's buffers and the
 * rings from this thread; only when a ring is full or empty does the
 * transport wait, on a libuv pool thread asleep on this rank's doorbell (a
 * futex word every peer bumps when it writes to or reads from this rank), so
 * a message that is already there costs no event-loop turn.
 *
 * A peer that closed its transport or whose process died fails the receives
 * from it (once its ring is drained) and the sends to it with
 * TESSERA_ERR_RANK_LOST; so does abortCollectives() every pending one.
 */
import { check, TesseraError } from '../core/errors.js';
import type { NativeHandle } from '../backend/native/native-addon.js';
import { MessageQueue, rankLost } from './message-queue.js';
import type { NativeComm } from './native-comm.js';
import type { Transport } from './transport.js';

/** Longest doorbell sleep: how soon a dead peer (no wake-up) is noticed. */
const WAIT_SLICE_MS = 10;
const HEADER_BYTES = 8;
/** Largest message a peer may announce (activations of a step), as for socket meshes: a bound before any allocation. */
const MAX_SHM_MESSAGE = 2 ** 30;

interface PendingSend {
  /** [8]: the message length, little-endian. */
  header: Uint8Array;
  message: Uint8Array;
  /** Bytes of header + message written so far. */
  written: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

interface Incoming {
  /** [8] */
  header: Uint8Array;
  /** Bytes of header + message read so far. */
  read: number;
  message?: Uint8Array;
}

export class ShmTransport implements Transport {
  readonly kind = 'shm' as const;
  /** [size]: sends waiting for ring space, oldest first. */
  private readonly sends: PendingSend[][];
  /** [size]: messages read from each peer's ring, and receivers waiting for them. */
  private readonly inbound: MessageQueue[];
  /** [size]: the message being read from each peer. */
  private readonly incoming: Incoming[];
  private waiting = false;
  private closed = false;
  /** Peers whose ring broke the protocol: not read any more. */
  private readonly refused = new Set<number>();

  constructor(
    readonly rank: number,
    readonly size: number,
    private readonly comm: NativeComm,
    /** The native ShmMesh (every peer attached). */
    readonly mesh: NativeHandle,
  ) {
    this.sends = Array.from({ length: size }, () => []);
    this.inbound = Array.from({ length: size }, () => new MessageQueue());
    this.incoming = Array.from({ length: size }, () => ({ header: new Uint8Array(HEADER_BYTES), read: 0 }));
  }

  send(peer: number, message: Uint8Array): Promise<void> {
    this.checkPeer(peer);
    if (this.closed) return Promise.reject(rankLost(this.rank, 'this transport was closed'));
    const header = new Uint8Array(HEADER_BYTES);
    new DataView(header.buffer).setBigUint64(0, BigInt(message.byteLength), true);
    return new Promise((resolve, reject) => {
      this.sends[peer].push({ header, message, written: 0, resolve, reject });
      this.pump();
    });
  }

  receive(peer: number): Promise<Uint8Array> {
    this.checkPeer(peer);
    const next = this.inbound[peer].next();
    this.pump();
    return next;
  }

  receiveInto(peer: number, into: Uint8Array): Promise<void> {
    this.checkPeer(peer);
    const next = this.inbound[peer].nextInto(into);
    this.pump();
    return next;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.comm.commShmClose(this.mesh);
    const error = rankLost(this.rank, 'this transport was closed');
    for (let peer = 0; peer < this.size; peer++) {
      this.inbound[peer].fail(error);
      for (const send of this.sends[peer].splice(0)) send.reject(error);
    }
  }

  /** Moves everything that can move now; arms the doorbell wait when something is still pending. */
  private pump(): void {
    if (this.closed) return;
    const seen = this.comm.commShmDoorbell(this.mesh);
    let moved = true;
    while (moved) {
      moved = false;
      for (let peer = 0; peer < this.size; peer++) {
        if (peer === this.rank) continue;
        if (this.movePeer(peer)) moved = true;
      }
    }
    if (this.pending()) this.wait(seen);
  }

  /** Sends and receives with `peer`; ring indices a peer corrupted (TESSERA_ERR_PROTOCOL from the addon) end that peer's traffic, not the process. */
  private movePeer(peer: number): boolean {
    try {
      const wrote = this.writeSends(peer);
      return this.readMessages(peer) || wrote;
    } catch (error) {
      if (!String((error as { code?: unknown }).code).startsWith('TESSERA_ERR_')) throw error;
      this.refused.add(peer);
      for (const send of this.sends[peer].splice(0)) send.reject(error as Error);
      this.inbound[peer].fail(error as Error);
      return false;
    }
  }

  /** Writes queued sends to `peer` until its ring is full; whether any byte moved. */
  private writeSends(peer: number): boolean {
    const queue = this.sends[peer];
    let moved = false;
    while (queue.length > 0) {
      const send = queue[0];
      const total = HEADER_BYTES + send.message.byteLength;
      const before = send.written;
      if (send.written < HEADER_BYTES) send.written += this.comm.commShmRingWrite(this.mesh, peer, send.header, send.written, HEADER_BYTES - send.written);
      if (send.written >= HEADER_BYTES && send.written < total) {
        const done = send.written - HEADER_BYTES;
        send.written += this.comm.commShmRingWrite(this.mesh, peer, send.message, done, send.message.byteLength - done);
      }
      moved ||= send.written > before;
      if (send.written < total) return moved;
      queue.shift();
      send.resolve();
    }
    return moved;
  }

  /**
   * A length past the bound, from a peer process: nothing is allocated, its
   * receivers fail with the code, and its ring is read no more (the step
   * fails and the generation's teardown closes the transport).
   */
  private refuse(peer: number, length: number): boolean {
    this.refused.add(peer);
    this.inbound[peer].fail(new TesseraError('TESSERA_ERR_FRAME_TOO_LARGE', `rank ${peer} announced a message of ${length} bytes in shared memory; the bound is ${MAX_SHM_MESSAGE}`));
    return false;
  }

  /** Reads whole messages from `peer`'s ring into the queue; whether any byte moved. */
  private readMessages(peer: number): boolean {
    if (this.refused.has(peer)) return false;
    const state = this.incoming[peer];
    let moved = false;
    for (;;) {
      if (state.read < HEADER_BYTES) {
        const n = this.comm.commShmRingRead(this.mesh, peer, state.header, state.read, HEADER_BYTES - state.read);
        state.read += n;
        moved ||= n > 0;
        if (state.read < HEADER_BYTES) return moved;
        const length = Number(new DataView(state.header.buffer).getBigUint64(0, true));
        if (length > MAX_SHM_MESSAGE) return this.refuse(peer, length);
        // Straight into the waiting receiver's buffer when it named one of this length.
        const destination = this.inbound[peer].destination;
        state.message = destination !== undefined && destination.byteLength === length ? destination : new Uint8Array(length);
      }
      const message = state.message as Uint8Array;
      const done = state.read - HEADER_BYTES;
      if (done < message.byteLength) {
        const n = this.comm.commShmRingRead(this.mesh, peer, message, done, message.byteLength - done);
        state.read += n;
        moved ||= n > 0;
        if (state.read - HEADER_BYTES < message.byteLength) return moved;
      }
      state.read = 0;
      state.message = undefined;
      this.inbound[peer].push(message);
    }
  }

  /** Whether anything waits on a peer: a send for ring space, a receiver for a message, or a message half read. */
  private pending(): boolean {
    for (let peer = 0; peer < this.size; peer++) {
      if (this.sends[peer].length > 0 || this.inbound[peer].hasWaiters || this.incoming[peer].read > 0) return true;
    }
    return false;
  }

  private wait(seen: number): void {
    if (this.waiting) return;
    this.waiting = true;
    void this.comm.commShmWait(this.mesh, seen, WAIT_SLICE_MS).then(() => {
      this.waiting = false;
      if (this.closed) return;
      this.pump();
      this.failLostPeers();
    });
  }

  /**
   * Peers gone with nothing left in their rings: their receivers and the
   * sends to them fail. After abortCollectives() every peer counts as gone.
   */
  private failLostPeers(): void {
    const aborted = this.comm.commAborted(this.mesh);
    for (let peer = 0; peer < this.size; peer++) {
      if (peer === this.rank) continue;
      const waitedOn = this.sends[peer].length > 0 || this.inbound[peer].hasWaiters || this.incoming[peer].read > 0;
      if (!waitedOn) continue;
      const gone = aborted ? 'the transport was aborted (abortCollectives)' : this.comm.commShmPeerGone(this.mesh, peer);
      if (gone === '') continue;
      const error = rankLost(peer, gone);
      for (const send of this.sends[peer].splice(0)) send.reject(error);
      this.inbound[peer].fail(error);
    }
  }

  private checkPeer(peer: number): void {
    check(Number.isInteger(peer) && peer >= 0 && peer < this.size && peer !== this.rank, 'TESSERA_ERR_INVALID_ARGUMENT', `rank ${this.rank} cannot talk to rank ${peer} in a mesh of ${this.size}`);
  }
}
