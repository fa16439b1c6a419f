/**
 * The replicas behind a router: one RemoteEngineHost each (connected in the
 * background, retried until it answers), and each one's ReplicaState,
 * changed only by folding events. Health reports and load reports from the
 * hosts' polls, and the router's own routing and failures, all become
 * events here; a change of status is logged and counted.
 */
import { TesseraError } from '../core/errors.js';
import { RemoteEngineHost } from '../serve/remote-engine-host.js';
import type { ReplicaLoad } from '../serve/replica-protocol.js';
import type { HostHealth } from '../serve/engine-host.js';
import { applyReplicaEvent, initialReplica, isRoutable, type ReplicaEvent, type ReplicaId, type ReplicaState } from './replica-state.js';
import type { RouterMetrics } from './router-metrics.js';

export interface ReplicaSetOptions {
  /** The replicas' --api-key (never a client's key). */
  apiKey?: string;
  pollMs: number;
  /** A replica silent this long is out. */
  timeoutMs: number;
  /** An open breaker waits this long (with healthy polls) before its half-open trial. */
  cooldownMs: number;
  log: (line: string) => void;
  metrics: RouterMetrics;
}

interface Slot {
  state: ReplicaState;
  host: RemoteEngineHost | undefined;
  /** Why this replica is never routed to (it serves another model). */
  incompatible?: string;
}

export type ReplicaStatus = 'up' | 'down' | 'half-open' | 'draining' | 'connecting';

export function statusOf(state: ReplicaState, connected: boolean): ReplicaStatus {
  if (!connected || state.answeredAt === -Infinity) return 'connecting';
  if (state.draining) return 'draining';
  if (!state.healthy || state.breaker === 'open') return 'down';
  return state.breaker === 'half-open' ? 'half-open' : 'up';
}

export class ReplicaSet {
  private readonly slots: Slot[];
  private reference: ReplicaLoad | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly downListeners: ((id: ReplicaId) => void)[] = [];
  private closed = false;
  private connecting = false;

  constructor(
    urls: readonly string[],
    private readonly options: ReplicaSetOptions,
  ) {
    if (urls.length === 0) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'a router needs at least one --replica URL');
    this.slots = urls.map((url, index) => ({ state: initialReplica(index as ReplicaId, url.replace(/\/+$/, '')), host: undefined }));
    this.timer = setInterval(() => this.tick(), options.pollMs);
    this.timer.unref();
    void this.connectMissing();
  }

  /** Resolves with the first replica's load report once one answers; rejects after `timeoutMs`. */
  async waitForFirst(timeoutMs: number): Promise<ReplicaLoad> {
    const deadline = performance.now() + timeoutMs;
    while (!this.reference) {
      if (performance.now() > deadline || this.closed) {
        throw new TesseraError('TESSERA_ERR_REPLICA_UNAVAILABLE', `no replica answered within ${Math.round(timeoutMs / 1000)} s (${this.slots.map((slot) => slot.state.url).join(', ')}); start them, or check the URLs and --replica-api-key`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return this.reference;
  }

  get size(): number {
    return this.slots.length;
  }

  state(id: ReplicaId): ReplicaState {
    return this.slots[id].state;
  }

  host(id: ReplicaId): RemoteEngineHost | undefined {
    return this.slots[id].host;
  }

  /** Connected hosts, for aggregated stats. */
  hosts(): RemoteEngineHost[] {
    return this.slots.flatMap((slot) => (slot.host && !slot.incompatible ? [slot.host] : []));
  }

  routable(): ReplicaState[] {
    return this.slots.filter((slot) => slot.host && !slot.incompatible && isRoutable(slot.state)).map((slot) => slot.state);
  }

  statuses(): { url: string; status: ReplicaStatus }[] {
    return this.slots.map((slot) => ({ url: slot.state.url, status: statusOf(slot.state, slot.host !== undefined && !slot.incompatible) }));
  }

  /** Called when a replica goes down (its prefix cache may be gone). */
  onDown(listener: (id: ReplicaId) => void): void {
    this.downListeners.push(listener);
  }

  apply(id: ReplicaId, event: ReplicaEvent): void {
    const slot = this.slots[id];
    const connected = slot.host !== undefined && !slot.incompatible;
    const before = statusOf(slot.state, connected);
    slot.state = applyReplicaEvent(slot.state, event);
    const after = statusOf(slot.state, connected);
    if (before !== after) this.transitioned(slot, before, after);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await Promise.all(this.slots.map((slot) => slot.host?.close()));
  }

  private transitioned(slot: Slot, before: ReplicaStatus, after: ReplicaStatus): void {
    const why = after === 'down' || after === 'draining' ? ` (${slot.state.problem})` : '';
    this.options.log(`replica ${slot.state.url}: ${before} → ${after}${why}`);
    this.options.metrics.transitions.inc({ replica: slot.state.url, to: after });
    if (after === 'down') for (const listener of this.downListeners) listener(slot.state.id);
  }

  private tick(): void {
    const at = performance.now();
    for (const slot of this.slots) {
      if (!slot.host || slot.incompatible) continue;
      this.reportHealth(slot, slot.host.health());
      this.apply(slot.state.id, { type: 'CooldownChecked', at, cooldownMs: this.options.cooldownMs });
    }
    if (this.slots.some((slot) => !slot.host)) void this.connectMissing();
  }

  private reportHealth(slot: Slot, health: HostHealth): void {
    this.apply(slot.state.id, { type: 'HealthReported', healthy: health.ready, draining: health.code === 'TESSERA_ERR_DRAINING', status: health.status, at: performance.now() });
  }

  private async connectMissing(): Promise<void> {
    if (this.connecting || this.closed) return;
    this.connecting = true;
    try {
      await Promise.all(this.slots.filter((slot) => !slot.host).map((slot) => this.connect(slot)));
    } finally {
      this.connecting = false;
    }
  }

  private async connect(slot: Slot): Promise<void> {
    const { apiKey, pollMs, timeoutMs } = this.options;
    let host: RemoteEngineHost;
    try {
      host = await RemoteEngineHost.connect(slot.state.url, { apiKey, pollMs, timeoutMs });
    } catch {
      return; // not up yet: the next tick tries again
    }
    if (this.closed) return void host.close();
    this.reference ??= host.load;
    slot.incompatible = incompatibility(this.reference, host.load);
    if (slot.incompatible) this.options.log(`replica ${slot.state.url} is not used: ${slot.incompatible}`);
    slot.host = host;
    host.onHealth((health) => this.reportHealth(slot, health));
    host.onRestart(() => this.restarted(slot));
    host.onStats(() => this.reportLoad(slot, host));
    this.options.log(`replica ${slot.state.url}: ${host.limits.backend} backend, ${host.limits.numBlocks} KV blocks of ${host.limits.blockSize} tokens`);
    this.reportHealth(slot, host.health());
    this.reportLoad(slot, host);
  }

  /** The replica answers as a new process: whatever the router believed it cached is gone (as after a down). */
  private restarted(slot: Slot): void {
    this.options.log(`replica ${slot.state.url}: restarted (a new instance answers; its prefix cache starts empty)`);
    this.options.metrics.restarts.inc({ replica: slot.state.url });
    for (const listener of this.downListeners) listener(slot.state.id);
  }

  private reportLoad(slot: Slot, host: RemoteEngineHost): void {
    const { stats, maxActiveSequences, pd } = host.load;
    // KV moves only between caches of one element type: a replica whose dtype differs from the first's serves whole sequences.
    const kvTransfer = (pd?.kvTransfer ?? false) && host.limits.kvCacheDtype === this.reference?.limits.kvCacheDtype;
    const role = pd?.role ?? 'both';
    this.apply(slot.state.id, { type: 'LoadReported', running: stats.running, waiting: stats.waiting, blocksUsed: stats.blocksUsed, numBlocks: host.limits.numBlocks, capacity: maxActiveSequences, at: performance.now(), pd: { role, kvTransfer } });
  }
}

/** Why a replica cannot serve the same requests as the first one, or undefined when it can. */
function incompatibility(reference: ReplicaLoad, load: ReplicaLoad): string | undefined {
  if (load.model !== reference.model) return `it serves "${load.model}", the first replica "${reference.model}"`;
  if (load.vocabSize !== reference.vocabSize) return `its vocabulary has ${load.vocabSize} tokens, the first replica's ${reference.vocabSize}`;
  if (load.limits.blockSize !== reference.limits.blockSize) return `its KV blocks hold ${load.limits.blockSize} tokens, the first replica's ${reference.limits.blockSize}`;
  if (load.limits.maxModelLen < reference.limits.maxModelLen) return `its context holds ${load.limits.maxModelLen} tokens, less than the first replica's ${reference.limits.maxModelLen}`;
  return undefined;
}
