/**
 * The cluster as an operator reads it (GET /admin/cluster): the layout, each
 * node's rank, stage, health, pid, hardware and the bytes it holds, and the
 * re-shards so far. A pure function of the state, so it is plain JSON.
 */
import { placeOf } from '../parallel/mesh.js';
import type { ClusterNode, ClusterPhase, ClusterState, MeshPreference, NodeHardware } from './cluster-state.js';
import type { HeartbeatTiming } from './control-message.js';
import type { ReshardRecord } from './reshard-log.js';
import type { ClockOffset } from './node-clocks.js';

export interface NodeView {
  id: string;
  /** Rank in the current plan; absent for a spare. */
  rank?: number;
  stage?: number;
  tpRank?: number;
  layers?: [number, number];
  health: ClusterNode['health'];
  pid: number;
  local: boolean;
  address: string;
  hardware: NodeHardware;
  bytesHeld: number;
  /** Its clock against the coordinator's (µs, worker minus coordinator), once probed: traces are lined up by it. */
  clock?: { offsetMicros: number; roundTripMicros: number };
}

export interface ClusterView {
  phase: ClusterPhase;
  generation: number;
  preference: MeshPreference;
  layout?: { tp: number; pp: number; ep: number; layers: [number, number][] };
  refusal?: ClusterState['refusal'];
  heartbeat: HeartbeatTiming;
  nodes: NodeView[];
  reshards: ReshardRecord[];
}

export function clusterView(state: ClusterState, heartbeat: HeartbeatTiming, reshards: readonly ReshardRecord[], clockOf: (id: string) => ClockOffset | undefined = () => undefined): ClusterView {
  const plan = state.plan;
  const nodes = state.nodes.map((node): NodeView => {
    const view: NodeView = { id: node.id, health: node.health, pid: node.pid, local: node.local, address: node.address, hardware: node.hardware, bytesHeld: node.bytesHeld };
    const clock = clockOf(node.id);
    if (clock) view.clock = { offsetMicros: Math.round(clock.offsetMicros), roundTripMicros: Math.round(clock.roundTripMicros) };
    const rank = plan?.ranks.indexOf(node.id) ?? -1;
    if (!plan || rank < 0 || state.phase !== 'serving') return view;
    const { stage, tpRank } = placeOf(rank, plan);
    return { ...view, rank, stage, tpRank, layers: [plan.layers[stage][0], plan.layers[stage][1]] };
  });
  return {
    phase: state.phase,
    generation: state.generation,
    preference: state.preference,
    layout: plan && { tp: plan.tp, pp: plan.pp, ep: plan.ep, layers: plan.layers.map(([a, b]) => [a, b]) },
    refusal: state.refusal,
    heartbeat,
    nodes,
    reshards: reshards.slice(-20),
  };
}
