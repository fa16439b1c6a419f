/**
 * The engine thread's end of its KV links' shared-memory rings. The ring
 * files are opened by the process's event loop (shm-kv-link.ts) and their
 * file handles moved to the engine's thread, which then does every copy of
 * the rows itself: the prefill engine writes a layer's rows from its KV
 * pool straight into the ring (one gathered write), the decode engine reads
 * them straight into its own pool (one scattered read). The event loops
 * only pass the frames' headers and acknowledgements, so a transfer costs
 * two memory copies, both on threads that hold a core anyway, none on an
 * event loop waiting for one.
 *
 * Bandwidth probes take the same path (the same threads, copies and frame
 * sizes), so a transfer's rate and the link's are measured alike.
 */
import { readvSync, writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { KvRingIo, KvRowsHeader, RingSlot, TransferId } from '../engine/kv-messages.js';

/** To the engine's thread (the file handles are moved, not copied). */
export type KvRingToEngine =
  /** Prefill side: write payloads into this ring; `acked` (one BigInt64) is the reader's acknowledged end, kept by the event loop. */
  | { type: 'writer'; ring: string; handle: FileHandle; bytes: number; acked: SharedArrayBuffer }
  /** Decode side: read payloads out of this ring. */
  | { type: 'reader'; ring: string; handle: FileHandle; bytes: number }
  | { type: 'close'; ring: string }
  /** Prefill side: `frames` frames of `frameBytes` filler into `ring`, as rows would go. */
  | { type: 'probe'; ring: string; probe: string; frames: number; frameBytes: number }
  /** Decode side: a payload nobody takes (`probe`: read it anyway, timed, as rows would be). */
  | { type: 'skip'; slot: RingSlot; probe: string | undefined };

/** From the engine's thread. */
export type KvRingFromEngine =
  /** Prefill side: a payload is in the ring; the event loop sends its header. */
  | { type: 'frame'; slot: RingSlot; header: ({ type: 'rows' } & KvRowsHeader) | { type: 'probe'; probe: string; last: boolean } }
  /** Prefill side: a probe found the ring full after `frames` frames. */
  | { type: 'probe-stopped'; probe: string; frames: number }
  /** Decode side: the payload at `slot` is read (or skipped); its ring space may be reused. */
  | { type: 'read'; slot: RingSlot; readMs: number; transfer: TransferId | undefined; probe: string | undefined };

const ALIGN = 8;

class RingWriter {
  private written = 0;
  private readonly acked: BigInt64Array;

  constructor(
    readonly handle: FileHandle,
    private readonly bytes: number,
    acked: SharedArrayBuffer,
  ) {
    this.acked = new BigInt64Array(acked);
  }

  /** Where `size` bytes go (8-byte aligned; wrapping skips the end), or undefined when the reader is too far behind. */
  place(size: number): { offset: number; end: number } | undefined {
    const aligned = Math.ceil(size / ALIGN) * ALIGN;
    let offset = this.written % this.bytes;
    const skip = offset + aligned > this.bytes ? this.bytes - offset : 0;
    if (this.written + skip + aligned - Number(Atomics.load(this.acked, 0)) > this.bytes) return undefined;
    if (skip > 0) offset = 0;
    this.written += skip + aligned;
    return { offset, end: this.written };
  }
}

export class KvRings implements KvRingIo {
  private readonly writers = new Map<string, RingWriter>();
  private readonly readers = new Map<string, FileHandle>();
  private scratch = new Uint8Array(0);

  constructor(private readonly post: (message: KvRingFromEngine) => void) {}

  apply(message: KvRingToEngine): void {
    switch (message.type) {
      case 'writer':
        return void this.writers.set(message.ring, new RingWriter(message.handle, message.bytes, message.acked));
      case 'reader':
        return void this.readers.set(message.ring, message.handle);
      case 'close':
        return this.close(message.ring);
      case 'probe':
        return this.probe(message.ring, message.probe, message.frames, message.frameBytes);
      case 'skip':
        try {
          return this.readRows(message.slot, message.probe !== undefined ? [this.scratchOf(message.slot.bytes)] : undefined, undefined, message.probe);
        } catch {
          return; // a probe's frame on a ring closed meanwhile: the probe fails with its link
        }
    }
  }

  writeRows(header: KvRowsHeader, parts: readonly Uint8Array[], ring: string): boolean {
    const slot = this.write(ring, parts);
    if (!slot) return false;
    this.post({ type: 'frame', slot, header: { type: 'rows', ...header } });
    return true;
  }

  readRows(slot: RingSlot, targets: readonly Uint8Array[] | undefined, transfer: TransferId | undefined, probe?: string): void {
    const handle = this.readers.get(slot.ring);
    const started = performance.now();
    try {
      if (targets && !handle) throw new Error(`the KV ring ${slot.ring} is closed (its link broke): the rows cannot be read`);
      if (handle && targets) gather(handle.fd, targets, slot.offset, 'read');
    } finally {
      // Read or not, the slot is done with: the writer may use its space again.
      this.post({ type: 'read', slot, readMs: performance.now() - started, transfer, probe });
    }
  }

  private write(ring: string, parts: readonly Uint8Array[]): RingSlot | undefined {
    const writer = this.writers.get(ring);
    const bytes = parts.reduce((sum, part) => sum + part.byteLength, 0);
    const at = writer?.place(bytes);
    if (!writer || !at) return undefined;
    const started = performance.now();
    try {
      gather(writer.handle.fd, parts, at.offset, 'write');
    } catch {
      return undefined; // the ring is gone (the link closed): the rows go by message
    }
    return { ring, offset: at.offset, bytes, end: at.end, writeMs: performance.now() - started };
  }

  private probe(ring: string, probe: string, frames: number, frameBytes: number): void {
    const filler = new Uint8Array(frameBytes).fill(7);
    for (let i = 0; i < frames; i++) {
      const slot = this.write(ring, [filler]);
      if (!slot) return this.post({ type: 'probe-stopped', probe, frames: i });
      this.post({ type: 'frame', slot, header: { type: 'probe', probe, last: i === frames - 1 } });
    }
  }

  private scratchOf(bytes: number): Uint8Array {
    if (this.scratch.byteLength < bytes) this.scratch = new Uint8Array(bytes);
    return this.scratch.subarray(0, bytes);
  }

  private close(ring: string): void {
    const handle = this.writers.get(ring)?.handle ?? this.readers.get(ring);
    this.writers.delete(ring);
    this.readers.delete(ring);
    void handle?.close().catch(() => undefined);
  }
}

/** One gathered (or scattered) copy of `parts` at `position`, resumed where the kernel stopped (it caps a call's buffers). */
function gather(fd: number, parts: readonly Uint8Array[], position: number, direction: 'read' | 'write'): void {
  let index = 0;
  let within = 0;
  let at = position;
  while (index < parts.length) {
    const batch = parts.slice(index, index + 512).map((part, i) => (i === 0 ? part.subarray(within) : part));
    const done = direction === 'write' ? writevSync(fd, batch, at) : readvSync(fd, batch, at);
    if (done === 0) throw new Error(`the KV ring ended at ${at} (a ${direction} of a frame)`);
    at += done;
    let left = done;
    while (index < parts.length && left >= parts[index].byteLength - within) {
      left -= parts[index].byteLength - within;
      within = 0;
      index++;
    }
    within += left;
  }
}
