/**
 * Length-prefixed frames over a stream socket (TCP or Unix domain): a 4-byte
 * little-endian length, then the payload. Payloads are written without a
 * copy; frame-reader.ts parses what arrives, straight into the buffer a
 * receiver named (`receiveInto`) when the socket reads through it. Once
 * sealed (`seal`, after a greeting), each payload travels as AES-256-GCM
 * ciphertext and tag (frame-seal.ts).
 */
import type { OnReadOpts, Socket } from 'node:net';
import { TesseraError } from '../core/errors.js';
import { FrameLimits, type FrameLimitOptions } from './frame-limits.js';
import { FrameReader } from './frame-reader.js';
import { FrameOpener, FrameSealer, SEAL_OVERHEAD } from './frame-seal.js';
import type { MessageQueue } from './message-queue.js';

const MAX_FRAME = 0xffff_ffff;

export class FramedSocket {
  private readonly queue: MessageQueue;
  private readonly frames: FrameReader;
  private ended = false;
  private sealer: FrameSealer | undefined;
  /** Told once when the peer's frames broke the format, a limit or a seal (the socket is then dropped). */
  onViolation: ((error: Error) => void) | undefined;

  /**
   * `lost` makes the error for a far end that went away. `reader` is the one
   * a socket made with `onread: readInto(reader)` already reads into; without
   * it, frames are parsed from the socket's 'data' chunks.
   */
  constructor(
    readonly socket: Socket,
    private readonly lost: (why: string) => Error,
    reader?: FrameReader,
  ) {
    const frames = reader ?? new FrameReader();
    this.frames = frames;
    this.queue = frames.queue;
    // A frame past the limits: receivers get its coded error, and nothing more is read from this peer.
    frames.onViolation = (error) => {
      this.ended = true;
      socket.destroy();
      this.onViolation?.(error);
    };
    if (reader === undefined) socket.on('data', (chunk: Buffer) => frames.chunk(chunk));
    socket.on('error', (error) => this.end(error.message));
    socket.on('close', () => this.end('connection closed'));
  }

  /** What the peer may send from now on (checked on each frame's length, before its payload is stored). */
  limit(options: FrameLimitOptions): void {
    this.frames.limits = new FrameLimits(options);
  }

  /** From now on, frames this side sends are sealed under `sendKey`, and those it reads are opened under `receiveKey`. */
  seal(keys: { sendKey?: Buffer; receiveKey?: Buffer }): void {
    if (keys.sendKey) this.sealer = new FrameSealer(keys.sendKey);
    if (keys.receiveKey) this.frames.opener = new FrameOpener(keys.receiveKey);
  }

  get closed(): boolean {
    return this.ended;
  }

  send(payload: Uint8Array): Promise<void> {
    if (this.ended) return Promise.reject(this.lost('connection closed'));
    if (payload.byteLength > MAX_FRAME - SEAL_OVERHEAD) {
      return Promise.reject(new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `a message of ${payload.byteLength} bytes exceeds the 4 GiB frame limit; send it in parts`));
    }
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32LE(payload.byteLength + (this.sealer ? SEAL_OVERHEAD : 0), 0);
    const parts = this.sealer ? this.sealer.seal(header, payload) : [payload];
    return new Promise((resolve, reject) => {
      this.socket.cork();
      this.socket.write(header);
      for (const part of parts.slice(0, -1)) this.socket.write(part);
      this.socket.write(parts[parts.length - 1]!, (error) => (error ? reject(this.lost(error.message)) : resolve()));
      this.socket.uncork();
    });
  }

  receive(): Promise<Uint8Array> {
    return this.queue.next();
  }

  /** The next frame, written into `into`, which must have the frame's length. */
  receiveInto(into: Uint8Array): Promise<void> {
    return this.queue.nextInto(into);
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
}

/** The `onread` option (net.connect) that makes a socket read where `reader` says. */
export function readInto(reader: FrameReader): OnReadOpts {
  return {
    buffer: () => reader.nextBuffer(),
    callback: (count: number) => {
      reader.filled(count);
      return true;
    },
  };
}
