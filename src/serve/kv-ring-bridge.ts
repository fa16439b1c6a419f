/**
 * The event loop's side of the shared-memory rings a replica's engine
 * thread copies KV rows through (src/disagg/kv-ring.ts): it hands each
 * ring's file to the engine once both ends of a link have it (a transfer
 * names its link's ring when its sequence is submitted), sends the headers of
 * what the engine wrote, and acknowledges what the engine read. No row
 * byte passes through here.
 */
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
  }

  release(ring: string): void {
    this.links.delete(ring);
    this.engine.sendRing({ type: 'close', ring });
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
