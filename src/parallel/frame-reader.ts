/**
 * The receiving half of the frame format (framed-socket.ts): a 4-byte
 * little-endian length, then the payload. Bytes come in two ways:
 * - `chunk`: a buffer the socket allocated for one read ('data' events);
 *   a frame found whole inside it is handed out as a view, without a copy.
 * - `nextBuffer` / `filled`: the socket reads where this reader says
 *   (net.Socket's `onread`). Between frames that is a small staging buffer;
 *   inside a frame's payload it is the rest of the payload's own buffer —
 *   the receiver's destination (`receiveInto`) when one is waiting — so the
 *   kernel writes each payload byte straight into its place: no allocation,
 *   no copy in JavaScript.
 * A frame's length comes from the peer, so it is checked (limits, and the
 * size a waiting receiver expects) before anything is allocated for it; a
 * frame that fails is a violation: the queue fails with its coded error,
 * later bytes are ignored, and `onViolation` lets the owner drop the socket.
 * A sealed link (`opener`, frame-seal.ts) reads each frame whole, then
 * opens it; the payload then takes one copy into a named destination, and a
 * frame failing authentication is a violation like any other.
 */
import { TesseraError } from '../core/errors.js';
import type { FrameLimits } from './frame-limits.js';
import { SEAL_OVERHEAD, type FrameOpener } from './frame-seal.js';
import { MessageQueue } from './message-queue.js';

/** Staging for headers and small frames between payload reads (bytes). */
const STAGING_BYTES = 64 * 1024;

export class FrameReader {
  readonly queue = new MessageQueue();
  private readonly header = new Uint8Array(4);
  private headerFilled = 0;
  /** The payload being filled, across reads. */
  private body: Uint8Array | undefined;
  private bodyFilled = 0;
  private staging: Uint8Array | undefined;
  /** Whether the last buffer handed to the socket was the body (else staging). */
  private readingBody = false;
  /** Checked against every frame's announced length; none: only the format's own 4 GiB bound. */
  limits: FrameLimits | undefined;
  /** Called once when a frame breaks a limit (the reader ignores the rest of the stream). */
  onViolation: ((error: TesseraError) => void) | undefined;
  /** Opens sealed frames; none: frames are clear. */
  opener: FrameOpener | undefined;
  private violated = false;

  /** Where the socket should read next: the rest of the current payload, else staging. */
  nextBuffer(): Uint8Array {
    this.readingBody = this.body !== undefined;
    if (this.body !== undefined) return this.body.subarray(this.bodyFilled);
    this.staging ??= new Uint8Array(STAGING_BYTES);
    return this.staging;
  }

  /** The socket read `count` bytes into the buffer nextBuffer() returned. */
  filled(count: number): void {
    if (this.violated) return;
    if (this.readingBody) this.fillBody(count);
    // Staging is reused by the next read, so frames in it are copied out.
    else this.parse(this.staging!.subarray(0, count), false);
  }

  /** A chunk the socket allocated for this read; whole frames in it are handed out as views. */
  chunk(chunk: Uint8Array): void {
    this.parse(chunk, true);
  }

  private parse(bytes: Uint8Array, ownsBytes: boolean): void {
    let offset = 0;
    while (offset < bytes.length && !this.violated) {
      if (this.body === undefined) {
        const afterHeader = this.readHeader(bytes, offset);
        if (afterHeader < 0) return;
        offset = afterHeader;
        const length = this.frameLength;
        const destination = this.queue.destination;
        if (!this.admit(length, destination)) return;
        if (length > 0 && this.opener === undefined && destination?.byteLength === length) {
          this.body = destination;
        } else if (bytes.length - offset >= length) {
          const payload = bytes.subarray(offset, offset + length);
          this.deliver(ownsBytes || this.opener ? payload : payload.slice());
          offset += length;
          continue;
        } else {
          this.body = new Uint8Array(length);
        }
        this.bodyFilled = 0;
      }
      const count = Math.min(this.body.length - this.bodyFilled, bytes.length - offset);
      this.body.set(bytes.subarray(offset, offset + count), this.bodyFilled);
      offset += count;
      this.fillBody(count);
    }
  }

  /** Whether a frame of `length` may be read; else the stream is given up with a coded error. */
  private admit(length: number, destination: Uint8Array | undefined): boolean {
    try {
      this.limits?.admit(length);
      const expected = destination && destination.byteLength + (this.opener ? SEAL_OVERHEAD : 0);
      if (expected !== undefined && expected !== length) {
        throw new TesseraError('TESSERA_ERR_PROTOCOL', `a peer sent a frame of ${length} bytes where ${expected} were expected`);
      }
      return true;
    } catch (error) {
      this.violate(error);
      return false;
    }
  }

  /** Hands a whole frame's payload to the queue, opened first on a sealed link. */
  private deliver(payload: Uint8Array): void {
    if (this.opener === undefined) return this.queue.push(payload);
    try {
      this.queue.push(this.opener.open(payload.byteLength, payload));
    } catch (error) {
      this.violate(error);
    }
  }

  private violate(error: unknown): void {
    const coded = error instanceof TesseraError ? error : new TesseraError('TESSERA_ERR_PROTOCOL', String(error));
    this.violated = true;
    this.queue.fail(coded);
    this.onViolation?.(coded);
  }

  private fillBody(count: number): void {
    const body = this.body!;
    this.bodyFilled += count;
    if (this.bodyFilled < body.length) return;
    this.body = undefined;
    this.deliver(body);
  }

  private frameLength = 0;

  /** Reads header bytes from `offset`; once all 4 are in, sets frameLength and returns where the payload starts, else -1. */
  private readHeader(bytes: Uint8Array, offset: number): number {
    const count = Math.min(4 - this.headerFilled, bytes.length - offset);
    this.header.set(bytes.subarray(offset, offset + count), this.headerFilled);
    this.headerFilled += count;
    if (this.headerFilled < 4) return -1;
    this.headerFilled = 0;
    this.frameLength = new DataView(this.header.buffer).getUint32(0, true);
    return offset + count;
  }
}
