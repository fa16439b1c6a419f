/**
 * Frames out of a stream socket's chunks, each in a buffer of its own (so
 * its rows can be handed to another thread without a copy), with the times
 * its first and last bytes arrived: their difference is how long the frame
 * was on the wire, which is what a link's throughput is measured over
 * (time spent waiting for the prefill to compute a layer is not the link's).
 */
import { TesseraError } from '../core/errors.js';

export interface TimedFrame {
  /** [bodyLength] bytes, offset 0 in their own ArrayBuffer. */
  body: Uint8Array;
  /** performance.now() when the chunk holding the frame's first byte arrived. */
  firstByteAt: number;
  lastByteAt: number;
}

/** A frame longer than this is a peer that does not speak the protocol. */
const MAX_FRAME_BYTES = 1 << 30;

export class KvFrameReader {
  private readonly lengthBytes = new Uint8Array(4);
  private lengthFilled = 0;
  private body: Uint8Array | undefined;
  private bodyFilled = 0;
  private firstByteAt = 0;

  constructor(private readonly onFrame: (frame: TimedFrame) => void) {}

  /** Bytes that arrived at `at`; throws on a frame no peer of ours would send. */
  push(chunk: Uint8Array, at: number): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.body === undefined) {
        if (this.lengthFilled === 0) this.firstByteAt = at;
        const take = Math.min(4 - this.lengthFilled, chunk.length - offset);
        this.lengthBytes.set(chunk.subarray(offset, offset + take), this.lengthFilled);
        this.lengthFilled += take;
        offset += take;
        if (this.lengthFilled < 4) return;
        this.lengthFilled = 0;
        const length = new DataView(this.lengthBytes.buffer).getUint32(0, true);
        if (length > MAX_FRAME_BYTES) throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `a KV frame of ${length} bytes: the peer does not speak this protocol`);
        this.body = new Uint8Array(length);
        this.bodyFilled = 0;
      }
      const take = Math.min(this.body.length - this.bodyFilled, chunk.length - offset);
      this.body.set(chunk.subarray(offset, offset + take), this.bodyFilled);
      this.bodyFilled += take;
      offset += take;
      if (this.bodyFilled === this.body.length) {
        const body = this.body;
        this.body = undefined;
        this.onFrame({ body, firstByteAt: this.firstByteAt, lastByteAt: at });
      }
    }
  }
}
