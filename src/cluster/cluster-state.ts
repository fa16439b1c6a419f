/**
 * The state of a mesh as data (DESIGN §9): the nodes that joined, with the
 * hardware they reported and their health; the plan (shape, stage layer
 * ranges, the node behind each rank) and its generation; the preference the
 * operator gave (flags or POST /admin/reshard); and which ranks of the
 * current plan have loaded their shards. It is never mutated: events
 * (cluster-events.ts) make a new state, and decisions (placement.ts) read it.
 */
import type { ErrorCode } from '../core/errors.js';

/** A node's id for its whole membership; a worker that joins again gets a new one. */
export type NodeId = string & { readonly __brand: 'NodeId' };

export function nodeId(text: string): NodeId {
  return text as NodeId;
}

/** What a worker reports about itself when it joins. */
export interface NodeHardware {
  /** Bytes of memory the node offers for the model (its --memory-mib, else its free memory at join). */
  readonly memoryBytes: number;
  readonly cores: number;
  /** Rate of a short matrix multiply on the node's backend, GFLOP/s: relative speed, for uneven pipeline splits. */
  readonly matmulGflops: number;
  /** 'cpu', or the accelerator the node computes on. */
  readonly accelerator: string;
}

/** `late`: heartbeats overdue but not yet past the timeout; placement leaves such a node out. */
export type NodeHealth = 'healthy' | 'late';

export interface ClusterNode {
  readonly id: NodeId;
  readonly hardware: NodeHardware;
  readonly health: NodeHealth;
  readonly pid: number;
  /** The address it joined from. */
  readonly address: string;
  /** Forked by this coordinator (so it can be killed when lost). */
  readonly local: boolean;
  readonly joinedAtMs: number;
  /** Stored bytes of model weights it holds, as of its last ShardLoaded (0 for a spare). */
  readonly bytesHeld: number;
}

/** A layout of the model over nodes. Rank r = stage * tp + tpRank runs on ranks[r]. */
export interface Plan {
  readonly generation: number;
  readonly tp: number;
  readonly pp: number;
  /** Expert-parallel degree: 1, or tp (MoE experts spread over a stage's ranks). */
  readonly ep: number;
  /** Half-open layer range of each stage. */
  readonly layers: readonly (readonly [number, number])[];
  readonly ranks: readonly NodeId[];
}

/**
 * The shape the operator asked for. Unpinned, it is a starting point: tp is
 * kept while enough nodes are healthy and pp grows or shrinks with the node
 * count. Pinned (POST /admin/reshard), the shape is used whenever enough
 * nodes are healthy, and spare nodes stay spare.
 */
export interface MeshPreference {
  readonly tp: number;
  readonly pp: number;
  readonly ep: number;
  readonly pinned: boolean;
  /** Layers per stage (--pp-layers); used while the plan has this many stages. */
  readonly ppLayers?: readonly number[];
}

/**
 * `assembling`: no plan runs (before the first one, or after a rank of the
 * last one was lost); `loading`: a plan was chosen and its ranks are loading;
 * `serving`: every rank loaded; `refused`: the model fits on no layout of the
 * healthy nodes (waiting for more capacity).
 */
export type ClusterPhase = 'assembling' | 'loading' | 'serving' | 'refused';

export interface ClusterState {
  /** In join order. A lost node is removed. */
  readonly nodes: readonly ClusterNode[];
  /** The current plan, or the last one while assembling after a loss (placement keeps what nodes hold). */
  readonly plan: Plan | undefined;
  /** Generation of the latest plan chosen (0 before the first). */
  readonly generation: number;
  readonly phase: ClusterPhase;
  /** Nodes of the current plan that have loaded their shards. */
  readonly loaded: readonly NodeId[];
  readonly preference: MeshPreference;
  /** Why the last placement was refused (phase `refused`). */
  readonly refusal?: { readonly code: ErrorCode; readonly message: string };
}

export function initialState(preference: MeshPreference): ClusterState {
  return { nodes: [], plan: undefined, generation: 0, phase: 'assembling', loaded: [], preference };
}

export function nodeOf(state: ClusterState, id: NodeId): ClusterNode | undefined {
  return state.nodes.find((node) => node.id === id);
}

/** The rank a node runs in the current plan, or undefined for a spare. */
export function rankOf(state: ClusterState, id: NodeId): number | undefined {
  const rank = state.plan?.ranks.indexOf(id) ?? -1;
  return rank < 0 ? undefined : rank;
}

export function samePlanLayout(a: Plan, b: Plan): boolean {
  return (
    a.tp === b.tp &&
    a.pp === b.pp &&
    a.ep === b.ep &&
    a.ranks.length === b.ranks.length &&
    a.ranks.every((id, rank) => id === b.ranks[rank]) &&
    a.layers.every(([start, end], stage) => start === b.layers[stage][0] && end === b.layers[stage][1])
  );
}
