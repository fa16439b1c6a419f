/**
 * The event loop's side of the shared-memory rings a replica's engine
 * thread copies KV rows through (src/disagg/kv-ring.ts): it hands each
 * ring's file to the engine once both ends of a link have it, tells the
 * engine which transfer's rows go into which ring, sends the headers of
 * what the engine wrote, and acknowledges what the engine read. No row
 * byte passes through here.
 */
import type { TransferId } from '../engine/kv-messages.js';
import type { KvRingFromEngine, KvRingToEngine } from '../disagg/kv-ring.js';
import type { KvLink } from '../disagg/kv-link.js';
import type { ListenerKeeper } from '../disagg/kv-listener.js';
import type { SenderKeeper } from '../disagg/kv-sender.js';
import { ShmKvLink, type RingFile } from '../disagg/shm-kv-link.js';

export interface RingEngine {
  sendRing(message: KvRingToEngine): void;
  onRing(listener: (message: KvRingFromEngine) => void): void;
}

export type RingRead = Extract<KvRingFromEngine, { type: 'read' }>;

export class KvRingBridge implements SenderKeeper, ListenerKeeper {
  private readonly links = new Map<string, ShmKvLink>();
  /** Transfers whose link's ring is not kept yet: routed when it is. */
  private readonly waiting = new Map<ShmKvLink, Set<TransferId>>();
  private readonly routed = new Set<TransferId>();
  /** Probes the engine stopped early (ring full): their frame size, to finish them inline. */
  private readonly probes = new Map<string, { link: KvLink; frameBytes: number }>();

  constructor(
    private readonly engine: RingEngine,
    private readonly onRead: (read: RingRead) => void,
  ) {
    engine.onRing((message) => this.fromEngine(message));
  }

  adopt(link: ShmKvLink, file: RingFile): void {
    this.links.set(file.ring, link);
    if (file.acked) this.engine.sendRing({ type: 'writer', ring: file.ring, handle: file.handle, bytes: file.bytes, acked: file.acked });
    else this.engine.sendRing({ type: 'reader', ring: file.ring, handle: file.handle, bytes: file.bytes });
    const waiting = this.waiting.get(link);
    this.waiting.delete(link);
    for (const transfer of waiting ?? []) this.route(transfer, link);
  }

  release(ring: string): void {
    const link = this.links.get(ring);
    this.links.delete(ring);
    if (link) this.waiting.delete(link);
    this.engine.sendRing({ type: 'close', ring });
  }

  route(transfer: TransferId, link: KvLink): void {
    if (!(link instanceof ShmKvLink) || link.closed) return;
    const ring = link.keptRing;
    if (ring === undefined) {
      const waiting = this.waiting.get(link) ?? new Set<TransferId>();
      this.waiting.set(link, waiting.add(transfer));
      return;
    }
    this.routed.add(transfer);
    this.engine.sendRing({ type: 'route', transfer, ring });
  }

  unroute(transfer: TransferId): void {
    for (const waiting of this.waiting.values()) waiting.delete(transfer);
    if (this.routed.delete(transfer)) this.engine.sendRing({ type: 'route', transfer, ring: undefined });
  }

  probe(link: KvLink, probe: string, frames: number, frameBytes: number): boolean {
    const ring = link instanceof ShmKvLink ? link.keptRing : undefined;
    if (ring === undefined) return false;
    this.probes.set(probe, { link, frameBytes });
    this.engine.sendRing({ type: 'probe', ring, probe, frames, frameBytes });
    return true;
  }

  skip(slot: RingRead['slot'], probe: string | undefined): void {
    this.engine.sendRing({ type: 'skip', slot, probe });
  }

  private fromEngine(message: KvRingFromEngine): void {
    if (message.type === 'frame') {
      const { slot, header } = message;
      if (header.type === 'probe' && header.last) this.probes.delete(header.probe);
      return this.links.get(slot.ring)?.sendRing(header, slot);
    }
    if (message.type === 'probe-stopped') {
      // The ring was full: the probe's last frame goes inline, so it ends (and says what it measured).
      const probe = this.probes.get(message.probe);
      this.probes.delete(message.probe);
      return probe?.link.send({ type: 'probe', probe: message.probe, last: true }, [new Uint8Array(probe.frameBytes)]);
    }
    this.links.get(message.slot.ring)?.ackRing(message.slot.end);
    this.onRead(message);
  }
}
