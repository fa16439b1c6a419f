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
 * The copies are memcpy into and out of the ring's file mapped shared (the
 * native addon's mapShared): through pwritev/preadv each 4 KiB of a tmpfs
 * file costs a page-cache lookup and lock, and rows moved at 0.4-0.9 GB/s
 * here against 5-9 GB/s mapped. Without the addon they take that path.
 *
 * Bandwidth probes take the same path (the same threads, copies and frame
 * sizes), so a transfer's rate and the link's are measured alike. Like rows,
 * which rest in a KV pool far larger than the caches, a probe copies out of
 * and into memory that is not cache-resident: successive frames come from
 * and go to successive places of a PROBE_SPAN_BYTES buffer (one reused
 * frame-sized buffer would be copied from cache, not memory, and overstate
 * what the link moves from memory to memory), on the same kind of pages as
 * the pools (sliceBytes: 2 MiB ones when the addon is built).
 */
import { readvSync, writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { loadNativeAddon } from '../backend/native/native-addon.js';
import { sliceBytes } from '../format/slice-bytes.js';
import { RingPlacement } from './ring-placement.js';
import type { KvRingIo, KvRowsHeader, RingSlot, TransferId } from '../engine/kv-messages.js';
import { DirectWriter, type DirectCopier, type DirectFrameHeader, type DirectMessage, type DirectPools } from './kv-direct.js';

/** To the engine's thread (the file handles are moved, not copied). */
export type KvRingToEngine =
  /** Prefill side: write payloads into this ring; `acked` (one BigInt64) is the reader's acknowledged end, kept by the event loop. */
  | { type: 'writer'; ring: string; handle: FileHandle; bytes: number; acked: SharedArrayBuffer }
  /** Decode side: read payloads out of this ring; `direct`: offer the writer this engine's pools (`serve --kv-direct`). */
  | { type: 'reader'; ring: string; handle: FileHandle; bytes: number; direct: boolean }
  | { type: 'close'; ring: string }
  /** Prefill side: `frames` frames of `frameBytes` filler into `ring`, as rows would go. */
  | { type: 'probe'; ring: string; probe: string; frames: number; frameBytes: number }
  /** Decode side: a payload nobody takes (`probe`: read it anyway, timed, as rows would be). */
  | { type: 'skip'; slot: RingSlot; probe: string | undefined }
  /** Prefill side: the decode engine of `ring`'s link says where to write directly (kv-direct.ts). */
  | { type: 'direct'; ring: string; message: DirectMessage }
  /** Decode side: `transfer` opened on `ring`'s link: tell its writer the reserved blocks. */
  | { type: 'expose'; ring: string; transfer: TransferId }
  /** Decode side: no write into `transfer`'s held blocks can come any more: free them. */
  | { type: 'unhold'; transfer: TransferId };

/** From the engine's thread. */
export type KvRingFromEngine =
  /** Prefill side: a payload is in the ring; the event loop sends its header. */
  | { type: 'frame'; slot: RingSlot; header: ({ type: 'rows' } & KvRowsHeader) | { type: 'probe'; probe: string; last: boolean } }
  /** Prefill side: a probe found the ring full after `frames` frames. */
  | { type: 'probe-stopped'; probe: string; frames: number }
  /** Decode side: the payload at `slot` is read (or skipped); its ring space may be reused. */
  | { type: 'read'; slot: RingSlot; readMs: number; transfer: TransferId | undefined; probe: string | undefined }
  /** For the engine at the other end of `ring`'s link (kv-direct.ts). */
  | { type: 'direct'; ring: string; message: DirectMessage }
  /** Prefill side: a run (or probe frame) is written straight into the decode pools; the event loop sends its header. */
  | { type: 'direct-frame'; ring: string; header: DirectFrameHeader; bytes: number; writeMs: number };

/** A decode engine's imports, as direct writes need them (KvTransfers). */
export interface DirectImports {
  /** Marks `transfer` as written directly from `ring`'s link; its blocks, or undefined when it is not reserved here. */
  expose(transfer: TransferId, ring: string): { blocks: number[]; positions: number } | undefined;
  unhold(transfer: TransferId): void;
}

/** Direct writes in this thread: the native copier, and at the decode end its pools and imports. */
export interface KvRingsDirect {
  copier: DirectCopier;
  /** Decode side: this engine's pools for writers and the probe buffer they name, kept here (undefined where the pools are not in this thread). */
  pools?: () => { pools: DirectPools; probe: Uint8Array } | undefined;
  imports?: DirectImports;
}

/** A probe's frames rotate through this much memory at each end: more than a CPU's last-level cache. */
export const PROBE_SPAN_BYTES = 64 * 2 ** 20;

/** Maps a ring's file shared (undefined: copy through the descriptor instead). */
export type RingMapper = (fd: number, bytes: number, writable: boolean) => Uint8Array | undefined;

/** The native addon's mapping, when it is built and has one. */
export function nativeRingMapper(): RingMapper {
  const load = loadNativeAddon();
  if (!load.ok || typeof load.addon.mapShared !== 'function') return () => undefined;
  const addon = load.addon;
  return (fd, bytes, writable) => {
    try {
      return addon.mapShared(fd, bytes, writable);
    } catch {
      return undefined; // no address space for it: the descriptor path still works
    }
  };
}

/** A ring's file as this thread copies through it: mapped, or by descriptor. */
interface RingFileIo {
  readonly handle: FileHandle;
  readonly mapped: Uint8Array | undefined;
}

/**
 * Decode side: a ring's file, mapped at its first read. By then the writer
 * has written every page of it through (frames go through a ring only once
 * that succeeded), so the mapping's page touching allocates nothing. Mapped
 * when the reader gets the file, before the writer has, a ring larger than
 * the room left in /dev/shm (a container's is often 64 MiB) would end this
 * process with SIGBUS on the first page tmpfs cannot allocate, where the
 * writer's write gets ENOSPC and the link sends its frames inline.
 */
class RingReader implements RingFileIo {
  mapped: Uint8Array | undefined;
  private tried = false;

  constructor(
    readonly handle: FileHandle,
    private readonly bytes: number,
    private readonly map: RingMapper,
  ) {}

  /** Maps the ring the first time (or leaves it to the descriptor when it cannot be mapped). */
  mapOnce(): void {
    if (this.tried) return;
    this.tried = true;
    this.mapped = this.map(this.handle.fd, this.bytes, false);
  }
}

class RingWriter implements RingFileIo {
  private readonly placement: RingPlacement;
  private readonly acked: BigInt64Array;

  constructor(
    readonly handle: FileHandle,
    bytes: number,
    acked: SharedArrayBuffer,
    readonly mapped: Uint8Array | undefined,
  ) {
    this.placement = new RingPlacement(bytes);
    this.acked = new BigInt64Array(acked);
  }

  /** Where `size` bytes go (ring-placement.ts), or undefined when the reader is too far behind. */
  place(size: number): { offset: number; end: number } | undefined {
    return this.placement.place(Number(Atomics.load(this.acked, 0)), size);
  }
}

export class KvRings implements KvRingIo {
  private readonly writers = new Map<string, RingWriter>();
  private readonly readers = new Map<string, RingReader>();
  /** Decode side: where probe frames are read to (PROBE_SPAN_BYTES, allocated on the first probe), and the next place in it. */
  private probeTarget: Uint8Array | undefined;
  private probeTargetAt = 0;
  private direct: KvRingsDirect | undefined;
  private writer: DirectWriter | undefined;
  /** Decode side: this engine's pools as told to writers (described once), and the probe buffer they name (kept alive here). */
  private pools: DirectPools | undefined;
  private probeBuffer: Uint8Array | undefined;

  constructor(
    private readonly post: (message: KvRingFromEngine) => void,
    private readonly map: RingMapper = nativeRingMapper(),
  ) {}

  /** Writes rows straight into the decode pools of links that offer them (and offers this engine's, given `pools`). */
  useDirect(direct: KvRingsDirect): void {
    this.direct = direct;
    this.writer = new DirectWriter(direct.copier);
  }

  apply(message: KvRingToEngine): void {
    switch (message.type) {
      case 'writer':
        return void this.writers.set(message.ring, new RingWriter(message.handle, message.bytes, message.acked, this.map(message.handle.fd, message.bytes, true)));
      case 'reader':
        this.readers.set(message.ring, new RingReader(message.handle, message.bytes, this.map));
        return this.offerPools(message.ring, message.direct);
      case 'close':
        return this.close(message.ring);
      case 'direct': {
        const answer = this.writer?.apply(message.ring, message.message);
        return void (answer && this.post({ type: 'direct', ring: message.ring, message: answer }));
      }
      case 'expose':
        return this.expose(message.ring, message.transfer);
      case 'unhold':
        return this.direct?.imports?.unhold(message.transfer);
      case 'probe':
        return this.probe(message.ring, message.probe, message.frames, message.frameBytes);
      case 'skip':
        try {
          return this.readRows(message.slot, message.probe !== undefined ? [this.probeTargetFor(message.slot.bytes)] : undefined, undefined, message.probe);
        } catch {
          return; // a probe's frame on a ring closed meanwhile: the probe fails with its link
        }
    }
  }

  writeRows(header: KvRowsHeader, parts: readonly Uint8Array[], ring: string): boolean {
    const writeMs = this.writer?.write(header, parts, ring);
    if (writeMs !== undefined) {
      const bytes = parts.reduce((sum, part) => sum + part.byteLength, 0);
      this.post({ type: 'direct-frame', ring, header: { type: 'rows', ...header }, bytes, writeMs });
      return true;
    }
    const slot = this.write(ring, parts);
    if (!slot) return false;
    this.post({ type: 'frame', slot, header: { type: 'rows', ...header } });
    return true;
  }

  readRows(slot: RingSlot, targets: readonly Uint8Array[] | undefined, transfer: TransferId | undefined, probe?: string): void {
    const reader = this.readers.get(slot.ring);
    // Before the clock starts: mapping (and touching) the ring is the link's setup, not this frame's time.
    if (targets) reader?.mapOnce();
    const started = performance.now();
    try {
      if (targets && !reader) throw new Error(`the KV ring ${slot.ring} is closed (its link broke): the rows cannot be read`);
      if (reader && targets) copy(reader, targets, slot.offset, 'read');
    } finally {
      // Read or not, the slot is done with: the writer may use its space again.
      this.post({ type: 'read', slot, readMs: performance.now() - started, transfer, probe });
    }
  }

  /** Prefill side: `transfer` is over here; no more of its rows go directly. */
  endTransfer(transfer: TransferId): void {
    this.writer?.end(transfer);
  }

  /** Decode side: a writer's ring is open here: tell it where this engine's pools are, or that it takes no direct writes (it waits for one or the other). */
  private offerPools(ring: string, offer: boolean): void {
    if (!offer) return this.post({ type: 'direct', ring, message: { type: 'none' } });
    if (this.direct?.pools && !this.pools) {
      const described = this.direct.pools();
      this.pools = described?.pools;
      this.probeBuffer = described?.probe;
    }
    this.post({ type: 'direct', ring, message: this.pools ? { type: 'pools', pools: this.pools } : { type: 'none' } });
  }

  /** Decode side: the blocks `transfer` reserved, to the writer of `ring` (the transfer is then held until it is done or revoked). */
  private expose(ring: string, transfer: TransferId): void {
    if (!this.pools) return;
    const reserved = this.direct?.imports?.expose(transfer, ring);
    if (reserved) this.post({ type: 'direct', ring, message: { type: 'target', transfer, ...reserved } });
  }

  private write(ring: string, parts: readonly Uint8Array[]): RingSlot | undefined {
    const writer = this.writers.get(ring);
    const bytes = parts.reduce((sum, part) => sum + part.byteLength, 0);
    const at = writer?.place(bytes);
    if (!writer || !at) return undefined;
    const started = performance.now();
    try {
      copy(writer, parts, at.offset, 'write');
    } catch {
      return undefined; // the ring is gone (the link closed): the rows go by message
    }
    return { ring, offset: at.offset, bytes, end: at.end, writeMs: performance.now() - started };
  }

  private probe(ring: string, probe: string, frames: number, frameBytes: number): void {
    const source = spanOf(frameBytes);
    source.fill(7); // every page written before the timed copies (a first touch is not the link's time)
    let at = 0;
    for (let i = 0; i < frames; i++) {
      if (at + frameBytes > source.byteLength) at = 0;
      // Straight into the decode side's probe buffer when rows go that way: the copy transfers take.
      const writeMs = this.writer?.probe(ring, source.subarray(at, at + frameBytes));
      if (writeMs !== undefined) {
        at += frameBytes;
        this.post({ type: 'direct-frame', ring, header: { type: 'probe', probe, last: i === frames - 1 }, bytes: frameBytes, writeMs });
        continue;
      }
      const slot = this.write(ring, [source.subarray(at, at + frameBytes)]);
      at += frameBytes;
      if (!slot) return this.post({ type: 'probe-stopped', probe, frames: i });
      this.post({ type: 'frame', slot, header: { type: 'probe', probe, last: i === frames - 1 } });
    }
  }

  /** The next frame-sized place in the probe target (pages touched once, when it is made). */
  private probeTargetFor(bytes: number): Uint8Array {
    if (!this.probeTarget || this.probeTarget.byteLength < bytes) {
      this.probeTarget = sliceBytes(Math.max(bytes, PROBE_SPAN_BYTES)).fill(0);
      this.probeTargetAt = 0;
    }
    if (this.probeTargetAt + bytes > this.probeTarget.byteLength) this.probeTargetAt = 0;
    const target = this.probeTarget.subarray(this.probeTargetAt, this.probeTargetAt + bytes);
    this.probeTargetAt += bytes;
    return target;
  }

  private close(ring: string): void {
    this.writer?.close(ring);
    const handle = this.writers.get(ring)?.handle ?? this.readers.get(ring)?.handle;
    this.writers.delete(ring);
    this.readers.delete(ring);
    void handle?.close().catch(() => undefined);
  }
}

/** `parts` into the ring at `position` (write), or out of it into `parts` (read). */
function copy(ring: RingFileIo, parts: readonly Uint8Array[], position: number, direction: 'read' | 'write'): void {
  const mapped = ring.mapped;
  if (!mapped) return gather(ring.handle.fd, parts, position, direction);
  let at = position;
  for (const part of parts) {
    if (at + part.byteLength > mapped.byteLength) throw new Error(`the KV ring ended at ${mapped.byteLength} (a ${direction} of a frame)`);
    if (direction === 'write') mapped.set(part, at);
    else part.set(mapped.subarray(at, at + part.byteLength));
    at += part.byteLength;
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

/**
 * A probe's memory at the writing end: PROBE_SPAN_BYTES (or one frame, if
 * larger), whatever the frames' total. Filled from its start, its first
 * bytes have left the caches by the end, and the frames are copied from
 * there: a span of only the frames' total (64 frames of 200 KB: 12.8 MB)
 * stayed in a 32 MB last-level cache and probed 7.5-8.6 GB/s here, against
 * 2-6 GB/s from memory.
 */
function spanOf(frameBytes: number): Uint8Array {
  return sliceBytes(Math.max(frameBytes, PROBE_SPAN_BYTES));
}
