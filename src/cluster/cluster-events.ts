/**
 * Everything that happens to a mesh, as past-tense events, and `apply`, which
 * folds one into the state (one small function per event). The coordinator
 * keeps the log of events it applied: a test or a trace replays it.
 */
import type { ErrorCode } from '../core/errors.js';
import type { ClusterNode, ClusterState, MeshPreference, NodeId, Plan } from './cluster-state.js';

/** Why a plan was chosen. */
export type PlanReason = 'start' | 'lost' | 'joined' | 'admin' | 'broken';

export type ClusterEvent =
  | { readonly type: 'NodeJoined'; readonly node: ClusterNode }
  | { readonly type: 'HeartbeatMissed'; readonly id: NodeId; readonly silentMs: number }
  | { readonly type: 'HeartbeatResumed'; readonly id: NodeId }
  | { readonly type: 'NodeLost'; readonly id: NodeId; readonly reason: string }
  /** The ranks of a generation can no longer talk (a rank failed a step), though no node was lost. */
  | { readonly type: 'MeshBroke'; readonly generation: number; readonly reason: string }
  | { readonly type: 'PlanChosen'; readonly plan: Plan; readonly reason: PlanReason }
  | { readonly type: 'ShardLoaded'; readonly id: NodeId; readonly generation: number; readonly bytesRead: number; readonly bytesHeld: number; readonly loadMs: number }
  /** A node outside the new plan dropped its shards and waits as a spare. */
  | { readonly type: 'NodeReleased'; readonly id: NodeId }
  | { readonly type: 'PlacementRefused'; readonly code: ErrorCode; readonly message: string }
  | { readonly type: 'PreferenceSet'; readonly preference: MeshPreference };

type Handler<T extends ClusterEvent['type']> = (state: ClusterState, event: Extract<ClusterEvent, { type: T }>) => ClusterState;

const HANDLERS: { [T in ClusterEvent['type']]: Handler<T> } = {
  NodeJoined: (state, { node }) => ({ ...state, nodes: [...state.nodes, node] }),
  HeartbeatMissed: (state, { id }) => withNode(state, id, (node) => ({ ...node, health: 'late' })),
  HeartbeatResumed: (state, { id }) => withNode(state, id, (node) => ({ ...node, health: 'healthy' })),
  NodeLost: nodeLost,
  MeshBroke: (state, { generation }) => (generation === state.generation && state.phase !== 'refused' ? { ...state, phase: 'assembling', loaded: [] } : state),
  PlanChosen: (state, { plan }) => ({ ...state, plan, generation: plan.generation, phase: 'loading', loaded: [], refusal: undefined }),
  ShardLoaded: shardLoaded,
  NodeReleased: (state, { id }) => withNode(state, id, (node) => ({ ...node, bytesHeld: 0 })),
  PlacementRefused: (state, { code, message }) => ({ ...state, phase: 'refused', loaded: [], refusal: { code, message } }),
  PreferenceSet: (state, { preference }) => ({ ...state, preference }),
};

export function apply(state: ClusterState, event: ClusterEvent): ClusterState {
  return (HANDLERS[event.type] as Handler<typeof event.type>)(state, event);
}

/** A lost node leaves the membership; when it ran a rank, the plan no longer runs. */
function nodeLost(state: ClusterState, { id }: { id: NodeId }): ClusterState {
  if (!state.nodes.some((node) => node.id === id)) return state;
  const nodes = state.nodes.filter((node) => node.id !== id);
  const ranRank = state.plan?.ranks.includes(id) ?? false;
  if (!ranRank || state.phase === 'refused') return { ...state, nodes };
  return { ...state, nodes, phase: 'assembling', loaded: [] };
}

function shardLoaded(state: ClusterState, event: Extract<ClusterEvent, { type: 'ShardLoaded' }>): ClusterState {
  if (event.generation !== state.generation || state.phase !== 'loading' || state.loaded.includes(event.id)) return state;
  const withBytes = withNode(state, event.id, (node) => ({ ...node, bytesHeld: event.bytesHeld }));
  const loaded = [...state.loaded, event.id];
  const everyRank = state.plan?.ranks.every((id) => loaded.includes(id)) ?? false;
  return { ...withBytes, loaded, phase: everyRank ? 'serving' : 'loading' };
}

function withNode(state: ClusterState, id: NodeId, change: (node: ClusterNode) => ClusterNode): ClusterState {
  if (!state.nodes.some((node) => node.id === id)) return state;
  return { ...state, nodes: state.nodes.map((node) => (node.id === id ? change(node) : node)) };
}
