/**
 * The dashboard's data: one snapshot of a server (model, health, topology,
 * totals, engine gauges, expert load) and a short log of recent events.
 * Events come from counters any part of the server registers in its
 * Prometheus registry (router migrations and replica changes, mesh
 * re-shards): the feed samples them every second while someone watches and
 * turns each increase into a line, so no subsystem needs a hook into it.
 */
import type { Registry } from 'prom-client';
import type { EngineHost } from './engine-host.js';
import type { TopologyProvider, TopologyView } from './dashboard-topology.js';

export interface DashboardEvent {
  readonly at: number;
  readonly kind: string;
  readonly text: string;
}

export interface DashboardState {
  readonly at: number;
  readonly model: { name: string; backend: string; maxModelLen: number; numBlocks: number; blockSize: number; kvCacheDtype: string } | null;
  readonly health: { ready: boolean; status: string };
  readonly topology: TopologyView | null;
  /** `requests`: completions and chat completions answered (any status). */
  readonly totals: { generatedTokens: number; promptTokens: number; requests: number };
  readonly engine: { waiting: number; running: number; blocksUsed: number; blocksFree: number; kvUse: number; prefixHitRate: number; preemptions: number };
  /** [layer][expert] tokens routed so far, MoE layers only. */
  readonly experts: { readonly layers: number[]; readonly tokens: number[][] };
  readonly events: readonly DashboardEvent[];
}

/** Counters whose increases are events, with the label that says which. */
const EVENT_COUNTERS: readonly { name: string; kind: string; label: string; text: (count: number, label: string) => string }[] = [
  { name: 'tessera_router_migrations_total', kind: 'migration', label: 'cause', text: (n, cause) => `${n} sequence(s) migrated to another replica (${cause})` },
  { name: 'tessera_router_replica_transitions_total', kind: 'replica', label: 'to', text: (n, to) => `a replica went ${to}${n > 1 ? ` (${n}×)` : ''}` },
  { name: 'tessera_reshards_total', kind: 'reshard', label: 'reason', text: (n, reason) => `the mesh re-sharded (${reason})${n > 1 ? ` ${n}×` : ''}` },
];

const GENERATION_ENDPOINTS = new Set(['/v1/completions', '/v1/chat/completions']);
const MAX_EVENTS = 50;
const SAMPLE_MS = 1000;
const WATCH_MS = 30_000;

export interface FeedSource {
  readonly registry: Registry;
  model(): { name: string; host: EngineHost } | undefined;
}

export class DashboardFeed {
  private topology: TopologyProvider | undefined;
  private readonly events: DashboardEvent[] = [];
  private readonly seen = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private watchedAt = 0;
  private baselined = false;

  constructor(private readonly source: FeedSource) {}

  setTopology(provider: TopologyProvider): void {
    this.topology = provider;
  }

  /** A line in the events log (for what no counter says). */
  record(kind: string, text: string): void {
    this.events.push({ at: Date.now(), kind, text });
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
  }

  async snapshot(): Promise<DashboardState> {
    this.watch();
    await this.sample();
    const loaded = this.source.model();
    const host = loaded?.host;
    const stats = host?.stats();
    const health = host?.health() ?? { ready: false, status: 'loading' };
    const blocks = (stats?.blocksUsed ?? 0) + (stats?.blocksFree ?? 0);
    const rows = (stats?.expertTokens ?? []).map((row, layer) => ({ row, layer })).filter(({ row }) => row.length > 0);
    return {
      at: Date.now(),
      model: loaded && host ? { name: loaded.name, ...host.limits } : null,
      health: { ready: health.ready, status: health.status },
      topology: this.topology?.() ?? null,
      totals: await this.totals(),
      engine: {
        waiting: stats?.waiting ?? 0,
        running: stats?.running ?? 0,
        blocksUsed: stats?.blocksUsed ?? 0,
        blocksFree: stats?.blocksFree ?? 0,
        kvUse: blocks === 0 ? 0 : (stats?.blocksUsed ?? 0) / blocks,
        prefixHitRate: stats && stats.prefixQueriedTokens > 0 ? stats.prefixHitTokens / stats.prefixQueriedTokens : 0,
        preemptions: stats?.preemptions ?? 0,
      },
      experts: { layers: rows.map(({ layer }) => layer), tokens: rows.map(({ row }) => row) },
      events: [...this.events],
    };
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Keeps sampling event counters for a while after each look, so events between polls are timed to the second. */
  private watch(): void {
    this.watchedAt = Date.now();
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (Date.now() - this.watchedAt > WATCH_MS) return this.close();
      void this.sample();
    }, SAMPLE_MS);
    this.timer.unref();
  }

  private async counterValues(name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
    const metric = this.source.registry.getSingleMetric(name);
    if (!metric) return [];
    const data = await metric.get();
    return data.values.map((entry) => ({ labels: entry.labels as Record<string, string | number>, value: entry.value }));
  }

  private async sample(): Promise<void> {
    for (const counter of EVENT_COUNTERS) {
      for (const { labels, value } of await this.counterValues(counter.name)) {
        const label = String(labels[counter.label] ?? '');
        const key = `${counter.name}{${label}}${JSON.stringify(labels)}`;
        // The first sample is the baseline (what happened before anyone watched is not news); a series that appears later started at 0.
        const before = this.seen.get(key) ?? (this.baselined ? 0 : value);
        this.seen.set(key, value);
        if (value > before) this.record(counter.kind, counter.text(value - before, label));
      }
    }
    this.baselined = true;
  }

  private async totals(): Promise<DashboardState['totals']> {
    const sum = async (name: string, keep: (labels: Record<string, string | number>) => boolean = () => true): Promise<number> =>
      (await this.counterValues(name)).filter((entry) => keep(entry.labels)).reduce((total, entry) => total + entry.value, 0);
    const generation = (labels: Record<string, string | number>): boolean => GENERATION_ENDPOINTS.has(String(labels['endpoint']));
    return { generatedTokens: await sum('tessera_generation_tokens_total'), promptTokens: await sum('tessera_prompt_tokens_total'), requests: await sum('tessera_requests_total', generation) };
  }
}
