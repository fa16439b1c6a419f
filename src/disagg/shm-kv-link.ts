/**
 * A KvLink between two replicas on one host whose payloads travel through
 * shared memory: the dialing side (the prefill replica) writes each
 * payload into a ring file in /dev/shm (tmpfs) and sends only its header,
 * position and length over the Unix socket; the accepting side reads it out
 * with one pread. A frame then costs two memory copies and no socket
 * round trips (a payload larger than the socket's buffer otherwise moves in
 * several wake-ups of both processes, each a scheduling delay on a busy
 * host). The file is unlinked as soon as the far end has it open, so a
 * killed process leaves nothing behind. When the ring has no room (the
 * reader is behind) or shared memory is unavailable, a payload goes inline
 * on the socket as before: the ring never blocks a sender.
 *
 * With a RingKeeper (a replica's engine thread, kv-ring.ts) the ring's file
 * handle moves to that thread once both ends have it, and the engine does
 * the copies itself between its KV pool and the ring; the link then only
 * carries the headers (`sendRing`) and the acknowledgements (`ackRing`).
 *
 * Wire time of a shared-memory frame: the writer's copy plus the reader's.
 */
import { closeSync, existsSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { KvLinkKind } from './kv-endpoint.js';
import type { RingSlot } from '../engine/kv-messages.js';
import type { KvFrameHeader } from './kv-frame.js';
import type { KvLink, ReceivedFrame } from './kv-link.js';
import type { SocketKvLink } from './socket-kv-link.js';
import { RingPlacement } from './ring-placement.js';
import { directMessageSchema, type DirectMessage } from './kv-direct.js';

/** The frames a shared-memory link adds on its socket (never seen by the link's users). */
export type ShmFrameHeader =
  /** `pid`: the writer's process (the reader holds blocks a direct writer knows until it is gone). */
  | { type: 'shm-open'; path: string; bytes: number; ring: string; pid: number }
  | { type: 'shm-ready' }
  /** `frame`'s payload is at `offset` in the ring; `end` counts every ring byte used so far (padding included). */
  | { type: 'shm'; frame: KvFrameHeader; offset: number; bytes: number; end: number; writeMs: number }
  | { type: 'shm-ack'; end: number }
  /** Between the two engines about direct writes (kv-direct.ts). */
  | { type: 'shm-direct'; message: DirectMessage }
  /** `frame`'s payload (`bytes`) is already where it goes: written straight into the reader's pools. */
  | { type: 'shm-direct-frame'; frame: KvFrameHeader; bytes: number; writeMs: number };

/** A ring's file as it moves to the thread that copies through it (the writer also gets the acknowledged end, one BigInt64). */
export interface RingFile {
  ring: string;
  handle: FileHandle;
  bytes: number;
  acked?: SharedArrayBuffer;
}

/** Takes a link's ring once both ends have it open: from then on it copies the payloads, the link carries headers. */
export interface RingKeeper {
  adopt(link: ShmKvLink, file: RingFile): void;
  release(ring: string): void;
  /** A direct-write message from the far end's engine (kv-direct.ts), on `link` (which may not be adopted yet: the writer writes its ring through first). */
  direct?(ring: string, message: DirectMessage, link: ShmKvLink): void;
}

/** Ring size: a few prompts' rows in flight (a 1,024-token TinyLlama prompt is 44 MiB in f32). */
export const DEFAULT_RING_BYTES = 128 * 2 ** 20;
/** The ring is written through once before it is used, in chunks of this size (on the thread pool, not the event loop). */
const PREFAULT_CHUNK_BYTES = 4 * 2 ** 20;

function isShm(header: { type: string }): header is ShmFrameHeader {
  return header.type.startsWith('shm');
}

export class ShmKvLink implements KvLink {
  private readonly frameHandlers: ((frame: ReceivedFrame) => void)[] = [];
  /** Writer: the ring's descriptor once the reader has it open; reader: the descriptor it reads from. */
  private fd: number | undefined;
  /** Writer: the ring's file while the offer is out. */
  private pending: FileHandle | undefined;
  private ringPath: string | undefined;
  /** The ring's id (the writer's choice), once both ends have it. */
  private ringId: string | undefined;
  /** Writer without a keeper: the ring's file, written here. */
  private own: FileHandle | undefined;
  /** Whether the keeper copies the payloads (this link only carries headers). */
  private kept = false;
  /** Writer, kept: the reader's acknowledged end, shared with the keeper's thread. */
  private ackedShared: BigInt64Array | undefined;
  private ringBytes = 0;
  /** Reader: the writer's process, as its ring offer said. */
  private peerPid: number | undefined;
  /** Whether the keeper has heard a direct-write message of this link (it then hears of its release too). */
  private directSeen = false;
  /** Writer: where payloads go (ring-placement.ts; made at the first), and the reader's acknowledged end, counted from the start. */
  private placement: RingPlacement | undefined;
  private acked = 0;

  private settleRing!: () => void;
  private settleDirect!: () => void;
  /** Writer: resolves once the ring is in use, or will not be (no shared memory, the link closed). */
  readonly ringSettled = new Promise<void>((resolve) => (this.settleRing = resolve));
  /** Writer: resolves once the reader has said whether it takes direct writes (kv-direct.ts), or the link closed. */
  readonly directSettled = new Promise<void>((resolve) => (this.settleDirect = resolve));

  private constructor(
    private readonly socket: SocketKvLink,
    private readonly writer: boolean,
    private readonly keeper: RingKeeper | undefined,
  ) {
    socket.onFrame((frame) => this.received(frame));
    socket.onClose(() => this.release());
    // Without a keeper's engine nothing here writes directly: nothing to wait for.
    if (!keeper?.direct) this.settleDirect();
  }

  /** The dialing side: offers a ring; until the far end has opened it, payloads go inline. */
  static dial(socket: SocketKvLink, ringBytes = DEFAULT_RING_BYTES, keeper?: RingKeeper): ShmKvLink {
    const link = new ShmKvLink(socket, true, keeper);
    void link.offerRing(ringBytes);
    return link;
  }

  /** The accepting side: reads the ring the far end offers. */
  static accept(socket: SocketKvLink, keeper?: RingKeeper): ShmKvLink {
    return new ShmKvLink(socket, false, keeper);
  }

  /** The ring's id while a keeper copies through it (else undefined). */
  get keptRing(): string | undefined {
    return this.kept ? this.ringId : undefined;
  }

  /** Writer, kept: the header of a payload the keeper has put in the ring. */
  sendRing(header: KvFrameHeader, slot: RingSlot): void {
    this.socket.send({ type: 'shm', frame: header, offset: slot.offset, bytes: slot.bytes, end: slot.end, writeMs: slot.writeMs });
  }

  /** Kept: a direct-write message for the far end's engine. */
  sendDirect(message: DirectMessage): void {
    this.socket.send({ type: 'shm-direct', message });
  }

  /** Writer, kept: the header of a payload the keeper wrote straight into the reader's pools. */
  sendDirectFrame(header: KvFrameHeader, bytes: number, writeMs: number): void {
    this.socket.send({ type: 'shm-direct-frame', frame: header, bytes, writeMs });
  }

  /** Reader: the writer's process id (undefined before its ring offer). */
  get writerPid(): number | undefined {
    return this.peerPid;
  }

  /** Reader, kept: the keeper has read everything up to `end`; the writer may reuse it. */
  ackRing(end: number): void {
    this.socket.send({ type: 'shm-ack', end });
  }

  get kind(): KvLinkKind {
    return this.socket.kind;
  }

  get peer(): string {
    return this.socket.peer;
  }

  get closed(): boolean {
    return this.socket.closed;
  }

  /** Whether payloads from here travel through shared memory now. */
  get sharedMemory(): boolean {
    return this.writer ? this.fd !== undefined || this.kept : this.ringBytes > 0;
  }

  send(header: KvFrameHeader, payload: readonly Uint8Array[] = []): void {
    const bytes = payload.reduce((sum, part) => sum + part.byteLength, 0);
    const at = bytes > 0 && this.writer ? this.place(bytes) : undefined;
    if (at === undefined) return this.socket.send(header, payload);
    const started = performance.now();
    let position = at.offset;
    for (const part of payload) position += writeSync(this.fd!, part, 0, part.byteLength, position);
    this.socket.send({ type: 'shm', frame: header, offset: at.offset, bytes, end: at.end, writeMs: performance.now() - started });
  }

  onFrame(handler: (frame: ReceivedFrame) => void): void {
    this.frameHandlers.push(handler);
  }

  onClose(handler: (why: string) => void): void {
    this.socket.onClose(handler);
  }

  close(): void {
    this.socket.close();
    this.release();
  }

  private async offerRing(ringBytes: number): Promise<void> {
    const folder = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    const ring = randomBytes(6).toString('hex');
    const path = join(folder, `tessera-kv-ring-${process.pid}-${ring}`);
    try {
      const handle = await open(path, 'w+', 0o600);
      await handle.truncate(ringBytes);
      this.ringPath = path;
      this.ringBytes = ringBytes;
      this.ringId = ring;
      // Not usable until the reader says it has the file open (then it is unlinked).
      this.pending = handle;
      if (this.socket.closed) return this.release();
      this.socket.send({ type: 'shm-open', path, bytes: ringBytes, ring, pid: process.pid });
    } catch {
      rmSync(path, { force: true }); // no shared memory here: every payload inline
      this.settleRing();
      this.settleDirect(); // no ring, so no reader to say whether it takes direct writes
    }
  }

  /** Writer: where `bytes` go in the ring (ring-placement.ts), or undefined when it has no room. */
  private place(bytes: number): { offset: number; end: number } | undefined {
    if (this.fd === undefined) return undefined;
    this.placement ??= new RingPlacement(this.ringBytes);
    return this.placement.place(this.acked, bytes);
  }

  private received(frame: ReceivedFrame): void {
    const header = frame.header as KvFrameHeader | ShmFrameHeader;
    if (!isShm(header)) return this.deliver(frame);
    switch (header.type) {
      case 'shm-open':
        // The kernel's word for who connected, where it has one; else the offer's.
        this.peerPid = this.socket.peerPid ?? (Number.isInteger(header.pid) ? header.pid : undefined);
        return void this.openRing(header.path, header.bytes, header.ring);
      case 'shm-ready':
        return this.ringReady();
      case 'shm-ack':
        this.acked = Math.max(this.acked, header.end);
        if (this.ackedShared) Atomics.store(this.ackedShared, 0, BigInt(this.acked));
        return;
      case 'shm':
        return this.readPayload(header);
      case 'shm-direct':
        // The reader's pools may come while this writer still writes its ring through (before it is kept): the keeper holds them by ring id.
        return this.direct(header.message);
      case 'shm-direct-frame':
        return this.deliver({ header: header.frame, payload: new Uint8Array(0), wireMs: header.writeMs, directBytes: header.bytes });
    }
  }

  /** A direct-write message for the keeper, checked: one that is malformed, or offers another process's memory than this socket's peer, is dropped (the rows keep to the ring). */
  private direct(value: unknown): void {
    if (this.ringId === undefined || !this.keeper?.direct) return;
    let message: DirectMessage;
    try {
      message = directMessageSchema(value, 'shm-direct.message');
    } catch {
      return;
    }
    if (message.type === 'pools' || message.type === 'none') this.settleDirect();
    // Writes go only into the process at the other end of this socket, never one the peer merely names.
    if (message.type === 'pools' && message.pools.pid !== this.socket.peerPid) return;
    this.directSeen = true;
    this.keeper.direct(this.ringId, message, this);
  }

  private deliver(frame: ReceivedFrame): void {
    for (const handler of this.frameHandlers) handler(frame);
  }

  /** Reader: opens the writer's ring (for its keeper, or to read here) and says so (the writer then unlinks it). */
  private async openRing(path: string, bytes: number, ring: string): Promise<void> {
    if (this.writer || this.fd !== undefined || this.kept) return;
    try {
      if (this.keeper) {
        const handle = await open(path, 'r');
        if (this.socket.closed) return void handle.close();
        this.kept = true;
        this.ringId = ring;
        this.keeper.adopt(this, { ring, handle, bytes });
      } else this.fd = openSync(path, 'r');
      this.ringBytes = bytes;
      this.socket.send({ type: 'shm-ready' });
      // Read here, not by an engine: no pools to offer (a keeper's engine answers for itself).
      if (!this.keeper) this.socket.send({ type: 'shm-direct', message: { type: 'none' } });
    } catch {
      // Another machine after all (a shared host id without a shared /dev/shm): the writer keeps sending inline.
    }
  }

  private ringReady(): void {
    const handle = this.pending;
    if (!this.writer || handle === undefined) return;
    this.pending = undefined;
    if (this.ringPath) rmSync(this.ringPath, { force: true });
    void this.useRing(handle);
  }

  /** Writer: the ring, unlinked and open at both ends, is written through, then used (here or by the keeper). */
  private async useRing(handle: FileHandle): Promise<void> {
    let usable = true;
    try {
      await prefault(handle, this.ringBytes);
    } catch {
      usable = false; // no room for it in /dev/shm: every payload inline
    }
    if (this.socket.closed || !usable) {
      await handle.close().catch(() => undefined);
      return this.settleRing();
    }
    if (!this.keeper) {
      this.own = handle;
      this.fd = handle.fd;
    } else {
      const acked = new SharedArrayBuffer(8);
      this.ackedShared = new BigInt64Array(acked);
      this.kept = true;
      this.keeper.adopt(this, { ring: this.ringId!, handle, bytes: this.ringBytes, acked });
    }
    this.settleRing();
  }


  private readPayload(header: Extract<ShmFrameHeader, { type: 'shm' }>): void {
    if (this.kept) {
      // The keeper reads it (and acknowledges it through ackRing).
      const slot: RingSlot = { ring: this.ringId!, offset: header.offset, bytes: header.bytes, end: header.end, writeMs: header.writeMs };
      return this.deliver({ header: header.frame, payload: new Uint8Array(0), wireMs: header.writeMs, slot });
    }
    if (this.fd === undefined) return this.socket.close();
    const started = performance.now();
    // A buffer of its own, offset 0: the rows' views on it are aligned and it can move to the engine's thread.
    const payload = new Uint8Array(header.bytes);
    for (let read = 0; read < header.bytes; ) {
      const got = readSync(this.fd, payload, read, header.bytes - read, header.offset + read);
      if (got === 0) return this.socket.close(); // the ring is shorter than the writer said: not our protocol
      read += got;
    }
    const readMs = performance.now() - started;
    this.socket.send({ type: 'shm-ack', end: header.end });
    this.deliver({ header: header.frame, payload, wireMs: header.writeMs + readMs });
  }

  private release(): void {
    this.settleRing();
    this.settleDirect();
    const handle = this.pending;
    this.pending = undefined;
    if (handle) void handle.close().catch(() => undefined);
    // A writer's descriptor is its file handle's (closed with it, below); a reader's is its own.
    if (this.fd !== undefined && !this.writer) closeSync(this.fd);
    if (this.own) void this.own.close().catch(() => undefined);
    this.own = undefined;
    this.fd = undefined;
    if (this.writer && this.ringPath) rmSync(this.ringPath, { force: true });
    if ((this.kept || this.directSeen) && this.ringId) {
      this.kept = false;
      this.directSeen = false;
      this.keeper?.release(this.ringId);
    }
  }
}

/**
 * Writes the whole ring once, so its pages exist before any row goes in: a
 * tmpfs page is allocated on its first write, and on a virtual machine that
 * costs tens of microseconds a page (rows written into a fresh ring moved at
 * about 95 MB/s here, into a written one at about 3 GB/s). Done once per
 * link, once both ends have the ring open (and it is unlinked, so a
 * process killed meanwhile leaves nothing); transfers go inline until then.
 */
async function prefault(handle: FileHandle, bytes: number): Promise<void> {
  const zeros = new Uint8Array(Math.min(PREFAULT_CHUNK_BYTES, bytes));
  for (let at = 0; at < bytes; at += zeros.byteLength) await handle.write(zeros, 0, Math.min(zeros.byteLength, bytes - at), at);
}
