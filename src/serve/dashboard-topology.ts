/**
 * What the dashboard draws as topology: replicas, each with its ranks laid
 * out by pipeline stage and tensor-parallel index, and a health word for
 * each. A server fills it from what it runs (one process, a mesh, or a
 * router's replicas) through a provider it registers with its feed.
 */
import { placeOf } from '../parallel/mesh.js';
import type { HostHealth } from './engine-host.js';

export interface RankView {
  readonly rank: number;
  readonly stage: number;
  /** Index within the stage's tensor-parallel group. */
  readonly tpIndex: number;
  readonly status: string;
}

export interface ReplicaView {
  readonly name: string;
  /** 'up', 'down', 'draining', 'connecting', 'loading', ... */
  readonly status: string;
  /** Sequences running or waiting there, when known. */
  readonly load?: number;
  /** KV blocks in use over all blocks (0..1), when known. */
  readonly kvUse?: number;
  readonly ranks: readonly RankView[];
}

export interface TopologyView {
  readonly kind: 'embedded' | 'mesh' | 'router';
  readonly layout: { readonly tp: number; readonly pp: number; readonly ep: number };
  readonly replicas: readonly ReplicaView[];
}

export type TopologyProvider = () => TopologyView;

function healthWord(health: HostHealth): string {
  return health.ready ? 'up' : health.status;
}

/** Ranks of one replica in rank order: stage-major, as the mesh numbers them. */
export function meshRanks(tp: number, pp: number, status: string): RankView[] {
  return Array.from({ length: tp * pp }, (_, rank) => {
    const place = placeOf(rank, { tp, pp });
    return { rank, stage: place.stage, tpIndex: place.tpRank, status };
  });
}

/** `tessera serve` on one process or on a mesh of tp × pp ranks. */
export function serveTopology(health: () => HostHealth, layout?: { tp: number; pp: number; ep: number }): TopologyProvider {
  return () => {
    const status = healthWord(health());
    const { tp, pp, ep } = layout ?? { tp: 1, pp: 1, ep: 1 };
    return { kind: layout ? 'mesh' : 'embedded', layout: { tp, pp, ep }, replicas: [{ name: 'this server', status, ranks: meshRanks(tp, pp, status) }] };
  };
}

/** A router: its replicas as it sees them (each replica's own ranks are on that replica's dashboard). */
export function routerTopology(replicas: () => readonly { url: string; status: string; load: number; kvUse: number }[]): TopologyProvider {
  return () => ({
    kind: 'router',
    layout: { tp: 1, pp: 1, ep: 1 },
    replicas: replicas().map((replica) => ({ name: replica.url, status: replica.status, load: replica.load, kvUse: replica.kvUse, ranks: [] })),
  });
}
