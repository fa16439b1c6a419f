/**
 * Heartbeats, coordinator side: each node's heartbeat thread keeps a
 * connection of its own and beats every `intervalMs`. A node silent for
 * three intervals is late (HeartbeatMissed); silent past `timeoutMs`, or with
 * its heartbeat connection closed, it is lost. The same connections carry
 * aborts to the nodes' heartbeat threads, which act even while a rank's main
 * thread is busy computing.
 */
import { encodeControl, decodeControl, type HeartbeatTiming } from './control-message.js';
import type { FramedSocket } from '../parallel/framed-socket.js';
import type { NodeId } from './cluster-state.js';

/** Defaults: a hung worker is declared lost within 2 s. */
export const DEFAULT_HEARTBEAT: HeartbeatTiming = { intervalMs: 250, timeoutMs: 2000 };

export interface MembershipEvents {
  missed(id: NodeId, silentMs: number): void;
  resumed(id: NodeId): void;
  lost(id: NodeId, reason: string, silentMs: number): void;
}

interface Tracked {
  lastBeatMs: number;
  late: boolean;
  link?: FramedSocket;
}

/**
 * Before a node's first beat the allowance is longer: a process that has just
 * joined is still starting its heartbeat thread (loading modules), which on a
 * busy machine takes seconds; a hang that early costs nothing but a join.
 */
const FIRST_BEAT_FACTOR = 5;

export class Membership {
  private readonly nodes = new Map<NodeId, Tracked>();
  private readonly timer: NodeJS.Timeout;
  private lastCheckMs = performance.now();

  constructor(
    readonly timing: HeartbeatTiming,
    private readonly events: MembershipEvents,
  ) {
    this.timer = setInterval(() => this.check(), Math.max(10, Math.floor(timing.intervalMs / 2)));
    this.timer.unref();
  }

  /** Starts counting a node's silence from now (its heartbeat connection follows the join). */
  track(id: NodeId): void {
    this.nodes.set(id, { lastBeatMs: performance.now(), late: false });
  }

  /** The node's heartbeat connection: every frame on it is a beat; its end loses the node. */
  attach(id: NodeId, link: FramedSocket): void {
    const tracked = this.nodes.get(id);
    if (!tracked || tracked.link) {
      link.close();
      return;
    }
    tracked.link = link;
    tracked.lastBeatMs = performance.now();
    void this.read(id, tracked, link);
  }

  /** Tells the nodes' heartbeat threads to abandon `generation`. */
  abort(ids: readonly NodeId[], generation: number): void {
    const frame = encodeControl({ type: 'abort', generation });
    for (const id of ids) void this.nodes.get(id)?.link?.send(frame).catch(() => undefined);
  }

  forget(id: NodeId): void {
    this.nodes.get(id)?.link?.close();
    this.nodes.delete(id);
  }

  stop(): void {
    clearInterval(this.timer);
    for (const id of [...this.nodes.keys()]) this.forget(id);
  }

  private async read(id: NodeId, tracked: Tracked, link: FramedSocket): Promise<void> {
    for (;;) {
      try {
        decodeControl(await link.receive());
      } catch (error) {
        if (this.nodes.get(id) === tracked) this.lose(id, `its heartbeat connection closed (${(error as Error).message})`, performance.now() - tracked.lastBeatMs);
        return;
      }
      tracked.lastBeatMs = performance.now();
      if (tracked.late) {
        tracked.late = false;
        this.events.resumed(id);
      }
    }
  }

  private check(): void {
    const now = performance.now();
    const blockedMs = now - this.lastCheckMs;
    this.lastCheckMs = now;
    // This event loop was blocked: beats may sit unread in the sockets, so silence proves nothing this round.
    if (blockedMs > 2 * this.timing.intervalMs) return;
    for (const [id, tracked] of [...this.nodes]) {
      const silentMs = now - tracked.lastBeatMs;
      if (!tracked.link && silentMs > FIRST_BEAT_FACTOR * this.timing.timeoutMs) this.lose(id, `its heartbeat thread did not connect within ${Math.round(silentMs)} ms`, silentMs);
      if (!tracked.link) continue;
      if (silentMs > this.timing.timeoutMs) this.lose(id, `no heartbeat for ${Math.round(silentMs)} ms (timeout ${this.timing.timeoutMs} ms)`, silentMs);
      else if (silentMs > 3 * this.timing.intervalMs && !tracked.late) {
        tracked.late = true;
        this.events.missed(id, silentMs);
      }
    }
  }

  private lose(id: NodeId, reason: string, silentMs: number): void {
    this.forget(id);
    this.events.lost(id, reason, silentMs);
  }
}
