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
 * Wire time of a shared-memory frame: the writer's copy plus the reader's.
 */
import { closeSync, existsSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { KvLinkKind } from './kv-endpoint.js';
import type { KvFrameHeader } from './kv-frame.js';
import type { KvLink, ReceivedFrame } from './kv-link.js';
import type { SocketKvLink } from './socket-kv-link.js';

/** The frames a shared-memory link adds on its socket (never seen by the link's users). */
export type ShmFrameHeader =
  | { type: 'shm-open'; path: string; bytes: number }
  | { type: 'shm-ready' }
  /** `frame`'s payload is at `offset` in the ring; `end` counts every ring byte used so far (padding included). */
  | { type: 'shm'; frame: KvFrameHeader; offset: number; bytes: number; end: number; writeMs: number }
  | { type: 'shm-ack'; end: number };

/** Ring size: several prompts' rows in flight (a 1,024-token TinyLlama prompt is 44 MiB in f32). */
export const DEFAULT_RING_BYTES = 256 * 2 ** 20;
const ALIGN = 8;

function isShm(header: { type: string }): header is ShmFrameHeader {
  return header.type.startsWith('shm');
}

export class ShmKvLink implements KvLink {
  private readonly frameHandlers: ((frame: ReceivedFrame) => void)[] = [];
  /** Writer: the ring's descriptor once the reader has it open; reader: the descriptor it reads from. */
  private fd: number | undefined;
  /** Writer: the ring's descriptor while the offer is out. */
  private pendingFd: number | undefined;
  private ringPath: string | undefined;
  private ringBytes = 0;
  /** Writer: ring bytes used (padding included) and acknowledged as read, both counted from the start. */
  private written = 0;
  private acked = 0;

  private constructor(
    private readonly socket: SocketKvLink,
    private readonly writer: boolean,
  ) {
    socket.onFrame((frame) => this.received(frame));
    socket.onClose(() => this.release());
  }

  /** The dialing side: offers a ring; until the far end has opened it, payloads go inline. */
  static dial(socket: SocketKvLink, ringBytes = DEFAULT_RING_BYTES): ShmKvLink {
    const link = new ShmKvLink(socket, true);
    link.offerRing(ringBytes);
    return link;
  }

  /** The accepting side: reads the ring the far end offers. */
  static accept(socket: SocketKvLink): ShmKvLink {
    return new ShmKvLink(socket, false);
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
    return this.writer ? this.fd !== undefined : this.ringBytes > 0;
  }

  send(header: KvFrameHeader, payload: readonly Uint8Array[] = []): void {
    const bytes = payload.reduce((sum, part) => sum + part.byteLength, 0);
    const at = bytes > 0 && this.writer ? this.place(bytes) : undefined;
    if (at === undefined) return this.socket.send(header, payload);
    const started = performance.now();
    let position = at;
    for (const part of payload) position += writeSync(this.fd!, part, 0, part.byteLength, position);
    this.socket.send({ type: 'shm', frame: header, offset: at, bytes, end: this.written, writeMs: performance.now() - started });
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

  private offerRing(ringBytes: number): void {
    const folder = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    const path = join(folder, `tessera-kv-ring-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      const fd = openSync(path, 'w+', 0o600);
      ftruncateSync(fd, ringBytes);
      this.ringPath = path;
      this.ringBytes = ringBytes;
      // Not usable until the reader says it has the file open (then it is unlinked).
      this.pendingFd = fd;
      this.socket.send({ type: 'shm-open', path, bytes: ringBytes });
    } catch {
      rmSync(path, { force: true }); // no shared memory here: every payload inline
    }
  }

  /** Writer: where `bytes` go in the ring (8-byte aligned; wrapping skips the end), or undefined when it has no room. */
  private place(bytes: number): number | undefined {
    if (this.fd === undefined) return undefined;
    const size = Math.ceil(bytes / ALIGN) * ALIGN;
    let offset = this.written % this.ringBytes;
    const skip = offset + size > this.ringBytes ? this.ringBytes - offset : 0;
    if (this.written + skip + size - this.acked > this.ringBytes) return undefined;
    if (skip > 0) offset = 0;
    this.written += skip + size;
    return offset;
  }

  private received(frame: ReceivedFrame): void {
    const header = frame.header as KvFrameHeader | ShmFrameHeader;
    if (!isShm(header)) return this.deliver(frame);
    switch (header.type) {
      case 'shm-open':
        return this.openRing(header.path, header.bytes);
      case 'shm-ready':
        return this.ringReady();
      case 'shm-ack':
        this.acked = Math.max(this.acked, header.end);
        return;
      case 'shm':
        return this.readPayload(header);
    }
  }

  private deliver(frame: ReceivedFrame): void {
    for (const handler of this.frameHandlers) handler(frame);
  }

  /** Reader: opens the writer's ring and says so (the writer then unlinks it). */
  private openRing(path: string, bytes: number): void {
    if (this.writer || this.fd !== undefined) return;
    try {
      this.fd = openSync(path, 'r');
      this.ringBytes = bytes;
      this.socket.send({ type: 'shm-ready' });
    } catch {
      // Another machine after all (a shared host id without a shared /dev/shm): the writer keeps sending inline.
    }
  }

  private ringReady(): void {
    if (!this.writer || this.pendingFd === undefined) return;
    this.fd = this.pendingFd;
    this.pendingFd = undefined;
    if (this.ringPath) rmSync(this.ringPath, { force: true });
  }

  private readPayload(header: Extract<ShmFrameHeader, { type: 'shm' }>): void {
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
    for (const fd of [this.fd, this.pendingFd]) if (fd !== undefined) closeSync(fd);
    this.fd = undefined;
    this.pendingFd = undefined;
    if (this.writer && this.ringPath) rmSync(this.ringPath, { force: true });
  }
}
