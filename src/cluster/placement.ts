/**
 * Placement as pure functions of nodes and model (DESIGN §9): which shape
 * (tp, pp), which node runs which rank, and which layers each stage holds.
 *
 * - Shape: a pinned preference is used as asked when enough nodes are
 *   healthy. Otherwise tp stays at the asked-for degree (halved while there
 *   are fewer nodes than that) and pp takes every node it can, so a lost
 *   worker shrinks the pipeline and a joining one grows it. Larger tp
 *   degrees are tried last, for a model that fits no other way.
 * - Ranks: each rank goes to the node that already holds most of that
 *   rank's weights (its old slice of the same layers and heads), so a
 *   re-shard reads as little as it can; newcomers fill the rest.
 * - Layers: stages get layers in proportion to their speed (a stage runs at
 *   its slowest rank's rate), within what each node's memory holds. Workers
 *   at one address share a machine and count at their median rate, and
 *   rates within SPEED_TOLERANCE of each other count as equal: measured
 *   rates carry noise, and a split that moves with noise would move bytes
 *   for nothing.
 * Only when no shape fits does placement refuse, with TESSERA_ERR_NO_PLACEMENT.
 */
import { TesseraError } from '../core/errors.js';
import { samePlanLayout, type ClusterNode, type ClusterState, type MeshPreference, type NodeId, type Plan } from './cluster-state.js';
import { modelBytes, stageBytes, type ModelFootprint } from './model-footprint.js';

/** A rank keeps its shards' stored bytes (to re-shard without reading them again) beside the backend's copy. */
export const WEIGHT_COPIES = 2;
/** Stage speeds closer than this ratio split layers evenly. */
export const SPEED_TOLERANCE = 1.5;

interface Shape {
  tp: number;
  pp: number;
}

/**
 * The plan for these nodes, numbered `generation`; `previous` (the plan that
 * ran before) decides which node keeps which rank.
 */
export function place(nodes: readonly ClusterNode[], model: ModelFootprint, preference: MeshPreference, previous?: Plan, generation = 1): Plan {
  if (nodes.length === 0) throw new TesseraError('TESSERA_ERR_NO_PLACEMENT', 'no healthy worker is left to run the model; start `tessera worker --join HOST:PORT --token T`');
  for (const shape of shapesToTry(nodes.length, model, preference)) {
    const ranks = assignRanks(nodes, shape, model, previous);
    const ppLayers = preference.ppLayers?.length === shape.pp ? preference.ppLayers : undefined;
    const layers = splitLayers(ranks, shape, model, ppLayers);
    if (layers) return { generation, tp: shape.tp, pp: shape.pp, ep: preference.ep > 1 ? shape.tp : 1, layers, ranks: ranks.map((node) => node.id) };
  }
  const largest = Math.max(...nodes.map((node) => node.hardware.memoryBytes));
  throw new TesseraError(
    'TESSERA_ERR_NO_PLACEMENT',
    `the model (${gib(modelBytes(model))} GiB stored; a rank needs ${WEIGHT_COPIES}× its shard) fits on no layout of the ${nodes.length} healthy workers (the largest offers ${gib(largest)} GiB); add workers or give them more --memory-mib`,
  );
}

/**
 * The plan the mesh should move to, or undefined when it should stay as it
 * is: while a plan loads, before the first plan has the nodes it asked for,
 * and when placement picks the plan already serving.
 */
export function replan(state: ClusterState, model: ModelFootprint): Plan | undefined {
  if (state.phase === 'loading') return undefined;
  const { plan, preference } = state;
  // A late rank of a serving plan keeps its place until it is lost: it may yet answer.
  const usable = state.nodes.filter((node) => node.health === 'healthy' || (state.phase === 'serving' && (plan?.ranks.includes(node.id) ?? false)));
  if (usable.length === 0) return undefined;
  if (plan === undefined && usable.length < preference.tp * preference.pp) return undefined;
  const next = place(usable, model, preference, plan, state.generation + 1);
  if (state.phase === 'serving' && plan && samePlanLayout(next, plan)) return undefined;
  return next;
}

/** Refuses a pinned shape the model or the node count cannot take, naming both. */
export function checkPinnedShape(model: ModelFootprint, preference: MeshPreference, healthyNodes: number): void {
  if (!preference.pinned) return;
  const { tp, pp } = preference;
  if (!model.tpDegrees.includes(tp) || tp * pp > healthyNodes || pp > model.numLayers) {
    throw new TesseraError(
      'TESSERA_ERR_NO_PLACEMENT',
      `tp ${tp} × pp ${pp} needs ${tp * pp} workers, a tp of ${model.tpDegrees.join('/')} and at most ${model.numLayers} stages; ${healthyNodes} workers are healthy`,
    );
  }
}

/** Shapes in the order placement tries them. */
export function shapesToTry(nodeCount: number, model: ModelFootprint, preference: MeshPreference): Shape[] {
  const shapes: Shape[] = [];
  const valid = model.tpDegrees.filter((tp) => tp <= nodeCount);
  if (preference.pinned && valid.includes(preference.tp) && preference.tp * preference.pp <= nodeCount && preference.pp <= model.numLayers) {
    shapes.push({ tp: preference.tp, pp: preference.pp });
  }
  const smaller = valid.filter((tp) => tp <= preference.tp).reverse();
  const larger = valid.filter((tp) => tp > preference.tp);
  for (const tp of [...smaller, ...larger]) shapes.push({ tp, pp: Math.min(Math.floor(nodeCount / tp), model.numLayers) });
  return shapes;
}

/** The node of each rank of `shape`: most held weights first, then previous rank order, then join order. */
function assignRanks(nodes: readonly ClusterNode[], shape: Shape, model: ModelFootprint, previous?: Plan): ClusterNode[] {
  const order = [...nodes].sort((a, b) => previousRank(previous, a.id) - previousRank(previous, b.id));
  const even = evenLayers(model.numLayers, shape.pp);
  const free = new Set(order);
  const ranks: ClusterNode[] = [];
  for (let rank = 0; rank < shape.tp * shape.pp; rank++) {
    const slot = { tp: shape.tp, tpRank: rank % shape.tp, layers: even[Math.floor(rank / shape.tp)] };
    let best: ClusterNode | undefined;
    let bestScore = -1;
    for (const node of free) {
      const score = heldOverlap(model, previous, node.id, slot);
      if (score > bestScore) [best, bestScore] = [node, score];
    }
    free.delete(best as ClusterNode);
    ranks.push(best as ClusterNode);
  }
  return ranks;
}

function previousRank(previous: Plan | undefined, id: NodeId): number {
  const rank = previous?.ranks.indexOf(id) ?? -1;
  return rank < 0 ? Number.MAX_SAFE_INTEGER : rank;
}

interface Slot {
  tp: number;
  tpRank: number;
  layers: readonly [number, number];
}

/** Stored bytes of `slot`'s layers that the node held in `previous` (its share of heads times shared layers). */
function heldOverlap(model: ModelFootprint, previous: Plan | undefined, id: NodeId, slot: Slot): number {
  const rank = previous?.ranks.indexOf(id) ?? -1;
  if (!previous || rank < 0) return 0;
  const [heldStart, heldEnd] = previous.layers[Math.floor(rank / previous.tp)];
  const heldShare = overlap(rank % previous.tp / previous.tp, ((rank % previous.tp) + 1) / previous.tp, slot.tpRank / slot.tp, (slot.tpRank + 1) / slot.tp);
  let bytes = 0;
  for (let layer = Math.max(heldStart, slot.layers[0]); layer < Math.min(heldEnd, slot.layers[1]); layer++) bytes += model.layerBytes[layer];
  return bytes * heldShare;
}

function overlap(a0: number, a1: number, b0: number, b1: number): number {
  return Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
}

/**
 * Layer ranges of the stages, given the node of every rank: `ppLayers` when
 * given, else in proportion to each stage's speed; undefined when the
 * stages' memory cannot hold the model that way.
 */
function splitLayers(ranks: readonly ClusterNode[], shape: Shape, model: ModelFootprint, ppLayers?: readonly number[]): [number, number][] | undefined {
  const stages = Array.from({ length: shape.pp }, (_, stage) => ranks.slice(stage * shape.tp, (stage + 1) * shape.tp));
  const memory = stages.map((nodes) => Math.min(...nodes.map((node) => node.hardware.memoryBytes)) / WEIGHT_COPIES);
  const counts = ppLayers ? [...ppLayers] : speedCounts(stages, shape, model, memory);
  if (!counts) return undefined;
  const layers = rangesOf(counts);
  const fits = layers.every(([start, end], stage) => stageBytes(model, shape.tp, start, end) <= memory[stage]);
  return fits ? layers : undefined;
}

/** Layers per stage in proportion to stage speed, each at least 1, within each stage's memory (in layers of the largest size). */
function speedCounts(stages: readonly ClusterNode[][], shape: Shape, model: ModelFootprint, memory: readonly number[]): number[] | undefined {
  const rate = hostRates(stages.flat());
  const speeds = stages.map((nodes) => Math.min(...nodes.map((node) => rate.get(node.address) ?? node.hardware.matmulGflops)));
  const even = Math.max(...speeds) <= SPEED_TOLERANCE * Math.min(...speeds) || speeds.some((speed) => !(speed > 0));
  const weights = even ? speeds.map(() => 1) : speeds;
  const largest = Math.max(...model.layerBytes) / shape.tp;
  const caps = memory.map((bytes, stage) => {
    const ends = (stage === 0 ? model.embeddingBytes : 0) + (stage === shape.pp - 1 ? model.outputBytes : 0);
    return largest === 0 ? model.numLayers : Math.floor((bytes - ends / shape.tp) / largest);
  });
  if (caps.some((cap) => cap < 1)) return undefined;
  const counts = proportional(model.numLayers, weights).map((count, stage) => Math.min(count, caps[stage]));
  // Layers a full stage could not take go to the stages with room, fastest per layer first.
  for (let left = model.numLayers - counts.reduce((a, b) => a + b, 0); left > 0; left--) {
    let pick = -1;
    for (let stage = 0; stage < counts.length; stage++) {
      if (counts[stage] < caps[stage] && (pick < 0 || weights[stage] / (counts[stage] + 1) > weights[pick] / (counts[pick] + 1))) pick = stage;
    }
    if (pick < 0) return undefined;
    counts[pick]++;
  }
  return counts;
}

/**
 * The median measured rate of the nodes at each address: workers on one
 * machine share its hardware, so their rates differ only by when each was
 * measured (a busy moment makes one look slow).
 */
function hostRates(nodes: readonly ClusterNode[]): Map<string, number> {
  const byHost = new Map<string, number[]>();
  for (const node of nodes) byHost.set(node.address, [...(byHost.get(node.address) ?? []), node.hardware.matmulGflops]);
  return new Map([...byHost].map(([address, rates]) => [address, rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)]]));
}

/** `total` split in proportion to `weights` (largest remainder), each part at least 1. */
export function proportional(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const spare = total - weights.length;
  const exact = weights.map((weight) => (spare * weight) / sum);
  const counts = exact.map((value) => 1 + Math.floor(value));
  const order = exact.map((value, index) => ({ index, rest: value - Math.floor(value) })).sort((a, b) => b.rest - a.rest || a.index - b.index);
  for (let left = total - counts.reduce((a, b) => a + b, 0), at = 0; left > 0; left--, at++) counts[order[at].index]++;
  return counts;
}

function rangesOf(counts: readonly number[]): [number, number][] {
  let start = 0;
  return counts.map((count) => {
    const range: [number, number] = [start, start + count];
    start += count;
    return range;
  });
}

/** Even layer ranges, earlier stages one larger (as stageLayerRanges). */
function evenLayers(numLayers: number, pp: number): [number, number][] {
  return rangesOf(Array.from({ length: pp }, (_, stage) => Math.floor(numLayers / pp) + (stage < numLayers % pp ? 1 : 0)));
}

function gib(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(2);
}
