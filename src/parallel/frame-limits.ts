/**
 * What a peer may send on one framed connection, checked from each frame's
 * 4-byte length before a byte of its payload is stored: a largest frame (a
 * number, or a function when the bound follows the connection's state, such
 * as the logits of the steps in flight), a rate (a token bucket of frames
 * per second), and optionally a total count (a connection that only carries
 * a greeting). A frame past a limit is a coded error; the reader drops the
 * connection.
 */
import { TesseraError } from '../core/errors.js';

export interface FrameLimitOptions {
  /** Largest payload, bytes. */
  maxFrameBytes: number | (() => number);
  /** Sustained frames per second (default: unlimited). */
  perSecond?: number;
  /** Frames allowed at once above the rate (default: one second's worth). */
  burst?: number;
  /** Frames the connection may carry in all (default: unlimited). */
  maxFrames?: number;
}

export class FrameLimits {
  private tokens: number;
  private lastMs = performance.now();
  private frames = 0;

  constructor(private readonly options: FrameLimitOptions) {
    this.tokens = this.burst;
  }

  /** Throws when a frame of `length` bytes may not come now. */
  admit(length: number): void {
    const max = typeof this.options.maxFrameBytes === 'function' ? this.options.maxFrameBytes() : this.options.maxFrameBytes;
    if (length > max) throw new TesseraError('TESSERA_ERR_FRAME_TOO_LARGE', `a peer announced a frame of ${length} bytes; this connection takes at most ${max}`);
    this.frames++;
    if (this.options.maxFrames !== undefined && this.frames > this.options.maxFrames) {
      throw new TesseraError('TESSERA_ERR_PROTOCOL', `a peer sent frame ${this.frames} on a connection that carries ${this.options.maxFrames}`);
    }
    this.takeToken();
  }

  private get burst(): number {
    return this.options.burst ?? this.options.perSecond ?? Number.POSITIVE_INFINITY;
  }

  private takeToken(): void {
    const rate = this.options.perSecond;
    if (rate === undefined) return;
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastMs) / 1000) * rate);
    this.lastMs = now;
    if (this.tokens < 1) throw new TesseraError('TESSERA_ERR_RATE_LIMITED', `a peer sent frames faster than the ${rate} a second this connection allows`);
    this.tokens -= 1;
  }
}
