/**
 * Length-prefixed frames over a stream socket (TCP or Unix domain): a 4-byte
 * little-endian length, then the payload. Payloads are written without a
 * copy; a received payload is a view of the socket's chunk when it arrived
 * whole, else one buffer of its exact size that the chunks are copied into.
 */
import type { Socket } from 'node:net';
import { TesseraError } from '../core/errors.js';
import { MessageQueue } from './message-queue.js';

const MAX_FRAME = 0xffff_ffff;

export class FramedSocket {
  private readonly queue = new MessageQueue();
  private readonly header = new Uint8Array(4);
  private headerFilled = 0;
  /** The frame being assembled across chunks. */
  private body: Uint8Array | undefined;
  private bodyFilled = 0;
  private ended = false;

  /** `lost` makes the error for a far end that went away. */
  constructor(
    readonly socket: Socket,
    private readonly lost: (why: string) => Error,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.end(error.message));
    socket.on('close', () => this.end('connection closed'));
  }

  get closed(): boolean {
    return this.ended;
  }

  send(payload: Uint8Array): Promise<void> {
    if (this.ended) return Promise.reject(this.lost('connection closed'));
    if (payload.byteLength > MAX_FRAME) {
      return Promise.reject(new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `a message of ${payload.byteLength} bytes exceeds the 4 GiB frame limit; send it in parts`));
    }
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32LE(payload.byteLength, 0);
    return new Promise((resolve, reject) => {
      this.socket.cork();
      this.socket.write(header);
      this.socket.write(payload, (error) => (error ? reject(this.lost(error.message)) : resolve()));
      this.socket.uncork();
    });
  }

  receive(): Promise<Uint8Array> {
    return this.queue.next();
  }

  close(): void {
    this.ended = true;
    this.socket.end();
    this.socket.destroySoon();
  }

  private end(why: string): void {
    this.ended = true;
    this.queue.fail(this.lost(why));
  }

  private onData(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.body === undefined) {
        const length = this.readHeader(chunk, offset);
        if (length < 0) return;
        // A zero-length frame is complete as soon as its header is.
        offset = this.afterHeader;
        if (chunk.length - offset >= length) {
          this.queue.push(new Uint8Array(chunk.buffer, chunk.byteOffset + offset, length));
          offset += length;
          continue;
        }
        this.body = new Uint8Array(length);
        this.bodyFilled = 0;
      }
      const count = Math.min(this.body.length - this.bodyFilled, chunk.length - offset);
      this.body.set(chunk.subarray(offset, offset + count), this.bodyFilled);
      this.bodyFilled += count;
      offset += count;
      if (this.bodyFilled === this.body.length) {
        this.queue.push(this.body);
        this.body = undefined;
      }
    }
  }

  private afterHeader = 0;

  /** The frame length once all 4 header bytes are in (setting afterHeader), else -1. */
  private readHeader(chunk: Buffer, offset: number): number {
    if (this.headerFilled === 0 && chunk.length - offset >= 4) {
      this.afterHeader = offset + 4;
      return chunk.readUInt32LE(offset);
    }
    const count = Math.min(4 - this.headerFilled, chunk.length - offset);
    this.header.set(chunk.subarray(offset, offset + count), this.headerFilled);
    this.headerFilled += count;
    this.afterHeader = offset + count;
    if (this.headerFilled < 4) return -1;
    this.headerFilled = 0;
    return new DataView(this.header.buffer).getUint32(0, true);
  }
}
