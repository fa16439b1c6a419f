/**
 * The event loop's side of the shared-memory rings a replica's engine
 * thread copies KV rows through (src/disagg/kv-ring.ts): it hands each
 * ring's file to the engine once both ends of a link have it (a transfer
 * names its link's ring when its sequence is submitted), sends the headers of
 * what the engine wrote, and acknowledges what the engine read. No row
 * byte passes through here. It also passes the two engines' direct-write
 * handshake (src/disagg/kv-direct.ts) and, on the decode side, keeps the
 * blocks of given-up transfers held until their writer has stopped
 * (src/disagg/direct-holds.ts).
 */
import type { KvRingFromEngine, KvRingToEngine } from '../disagg/kv-ring.js';
import type { KvLink } from '../disagg/kv-link.js';
import type { ListenerKeeper } from '../disagg/kv-listener.js';
import type { SenderKeeper } from '../disagg/kv-sender.js';
import { ShmKvLink, type RingFile } from '../disagg/shm-kv-link.js';
import type { DirectMessage } from '../disagg/kv-direct.js';
import { DirectHolds, processAlive } from '../disagg/direct-holds.js';
import type { TransferId } from '../engine/kv-messages.js';

export interface RingEngine {
  sendRing(message: KvRingToEngine): void;
  onRing(listener: (message: KvRingFromEngine) => void): void;
}

export type RingRead = Extract<KvRingFromEngine, { type: 'read' }>;

export class KvRingBridge implements SenderKeeper, ListenerKeeper {
  private readonly links = new Map<string, ShmKvLink>();
  /** Probes the engine stopped early (ring full): their frame size, to finish them inline. */
  private readonly probes = new Map<string, { link: KvLink; frameBytes: number }>();
  private readonly holds: DirectHolds;
  /** Decode side: transfers whose blocks a prefill engine was told, not yet admitted or given up. */
  private readonly targets = new Set<TransferId>();

  constructor(
    private readonly engine: RingEngine,
    private readonly onRead: (read: RingRead) => void,
    /** Whether prefill engines on this host may write into this engine's pools directly (`serve --kv-direct`). */
    private readonly offerDirect = true,
  ) {
    engine.onRing((message) => this.fromEngine(message));
    this.holds = new DirectHolds({
      unhold: (transfer) => this.engine.sendRing({ type: 'unhold', transfer }),
      revoke: (ring, transfer) => this.links.get(ring)?.sendDirect({ type: 'revoke', transfer }),
      alive: processAlive,
    });
  }

  adopt(link: ShmKvLink, file: RingFile): void {
    this.links.set(file.ring, link);
    if (!file.acked) this.holds.opened(file.ring, link.writerPid);
    if (file.acked) this.engine.sendRing({ type: 'writer', ring: file.ring, handle: file.handle, bytes: file.bytes, acked: file.acked });
    else this.engine.sendRing({ type: 'reader', ring: file.ring, handle: file.handle, bytes: file.bytes, direct: this.offerDirect });
  }

  release(ring: string): void {
    this.links.delete(ring);
    this.holds.closed(ring);
    this.engine.sendRing({ type: 'close', ring });
  }

  /** A direct-write message from the far end's engine; its answers go back on the same link (adopted or not yet). */
  direct(ring: string, message: DirectMessage, link: ShmKvLink): void {
    this.links.set(ring, link);
    if (message.type === 'revoked') return this.holds.revoked(ring, message.transfer);
    this.engine.sendRing({ type: 'direct', ring, message });
  }

  /** Decode side: `transfer` opened on `ring`'s link; its writer may learn its blocks. */
  expose(transfer: TransferId, ring: string): void {
    if (this.offerDirect) this.engine.sendRing({ type: 'expose', ring, transfer });
  }

  /** Decode side: the engine holds a given-up transfer's blocks until its writer stops. */
  held(transfer: TransferId, ring: string): void {
    this.targets.delete(transfer);
    this.holds.held(transfer, ring);
  }

  /** Decode side: `transfer`'s sequence was admitted (every write into its blocks is done). */
  admitted(transfer: TransferId): void {
    this.targets.delete(transfer);
  }

  /** Transfers whose blocks a prefill engine knows, not yet admitted or given up. */
  get targetCount(): number {
    return this.targets.size;
  }

  /** Transfers whose blocks are held for a writer that has not stopped yet. */
  get heldCount(): number {
    return this.holds.count;
  }

  close(): void {
    this.holds.stop();
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
    if (message.type === 'direct') {
      if (message.message.type === 'target') this.targets.add(message.message.transfer);
      return this.links.get(message.ring)?.sendDirect(message.message);
    }
    if (message.type === 'direct-frame') {
      if (message.header.type === 'probe' && message.header.last) this.probes.delete(message.header.probe);
      return this.links.get(message.ring)?.sendDirectFrame(message.header, message.bytes, message.writeMs);
    }
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
