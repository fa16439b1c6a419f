/** Placement and re-planning as pure functions of hand-built cluster states: no processes, no sockets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apply, type ClusterEvent } from './cluster-events.js';
import { initialState, nodeId, type ClusterNode, type ClusterState, type MeshPreference, type Plan } from './cluster-state.js';
import type { ModelFootprint } from './model-footprint.js';
import { place, proportional, replan, shapesToTry } from './placement.js';

const MIB = 2 ** 20;
/** TinyLlama-like: 22 layers of 40 MiB, 68 MiB ends, splits by tp 1..32. */
const MODEL: ModelFootprint = { numLayers: 22, layerBytes: Array.from({ length: 22 }, () => 40 * MIB), embeddingBytes: 34 * MIB, outputBytes: 34 * MIB, tpDegrees: [1, 2, 4, 8, 16, 32] };
const PREFER = (tp: number, pp: number, pinned = false): MeshPreference => ({ tp, pp, ep: 1, pinned });

function node(name: string, options: Partial<{ memoryMib: number; gflops: number; address: string }> = {}): ClusterNode {
  return {
    id: nodeId(name),
    hardware: { memoryBytes: (options.memoryMib ?? 4096) * MIB, cores: 2, matmulGflops: options.gflops ?? 10, accelerator: 'cpu' },
    health: 'healthy',
    pid: 1,
    address: options.address ?? `10.0.0.${name.charCodeAt(0)}`,
    local: true,
    joinedAtMs: 0,
    bytesHeld: 0,
  };
}

function fold(state: ClusterState, events: ClusterEvent[]): ClusterState {
  return events.reduce(apply, state);
}

/** A state serving `plan` on `nodes`. */
function serving(nodes: ClusterNode[], plan: Plan, preference = PREFER(plan.tp, plan.pp)): ClusterState {
  const joined = fold(initialState(preference), nodes.map((n) => ({ type: 'NodeJoined', node: n })));
  return fold(joined, [{ type: 'PlanChosen', plan, reason: 'start' }, ...plan.ranks.map((id): ClusterEvent => ({ type: 'ShardLoaded', id, generation: plan.generation, bytesRead: 1, bytesHeld: 1, loadMs: 1 }))]);
}

test('the first plan waits for the asked-for mesh, then takes it', () => {
  const nodes = ['a', 'b', 'c', 'd'].map((name) => node(name));
  let state = initialState(PREFER(2, 2));
  for (const n of nodes.slice(0, 3)) {
    state = apply(state, { type: 'NodeJoined', node: n });
    assert.equal(replan(state, MODEL), undefined, 'three of four workers: no plan yet');
  }
  state = apply(state, { type: 'NodeJoined', node: nodes[3] });
  const plan = replan(state, MODEL);
  assert.deepEqual(plan, { generation: 1, tp: 2, pp: 2, ep: 1, layers: [[0, 11], [11, 22]], ranks: ['a', 'b', 'c', 'd'] });
});

test('a lost rank shrinks the pipeline and keeps every survivor on the heads and layers it holds', () => {
  const nodes = ['a', 'b', 'c', 'd'].map((name) => node(name));
  const plan: Plan = { generation: 1, tp: 2, pp: 2, ep: 1, layers: [[0, 11], [11, 22]], ranks: nodes.map((n) => n.id) };
  const lost = apply(serving(nodes, plan), { type: 'NodeLost', id: nodeId('d'), reason: 'killed' });
  assert.equal(lost.phase, 'assembling');
  // tp 2 kept; three nodes make one stage of two; stage 0's ranks keep their places.
  assert.deepEqual(replan(lost, MODEL), { generation: 2, tp: 2, pp: 1, ep: 1, layers: [[0, 22]], ranks: ['a', 'b'] });
  // Losing a stage-0 rank: the node that held the same heads (tp rank 0, stage 1) takes rank 0.
  const lostA = apply(serving(nodes, plan), { type: 'NodeLost', id: nodeId('a'), reason: 'killed' });
  assert.deepEqual(replan(lostA, MODEL)?.ranks, ['c', 'b']);
});

test('tp 2 that loses a worker becomes tp 1 on the survivor', () => {
  const nodes = [node('a'), node('b')];
  const plan: Plan = { generation: 4, tp: 2, pp: 1, ep: 1, layers: [[0, 22]], ranks: ['a', 'b'].map(nodeId) };
  const state = apply(serving(nodes, plan), { type: 'NodeLost', id: nodeId('a'), reason: 'heartbeat' });
  assert.deepEqual(replan(state, MODEL), { generation: 5, tp: 1, pp: 1, ep: 1, layers: [[0, 22]], ranks: ['b'] });
});

test('a worker joining a serving tp 1 mesh grows it to pp 2; the old rank keeps stage 0', () => {
  const plan: Plan = { generation: 1, tp: 1, pp: 1, ep: 1, layers: [[0, 22]], ranks: [nodeId('a')] };
  const state = apply(serving([node('a')], plan), { type: 'NodeJoined', node: node('b') });
  assert.deepEqual(replan(state, MODEL), { generation: 2, tp: 1, pp: 2, ep: 1, layers: [[0, 11], [11, 22]], ranks: ['a', 'b'] });
  assert.equal(replan(serving([node('a')], plan), MODEL), undefined, 'nothing changed: no new plan');
});

test('a pinned shape is used as asked and leaves spares; unpinned, the mesh grows', () => {
  const nodes = ['a', 'b', 'c'].map((name) => node(name));
  const plan: Plan = { generation: 1, tp: 1, pp: 1, ep: 1, layers: [[0, 22]], ranks: [nodeId('a')] };
  const pinned = apply(serving(nodes, plan), { type: 'PreferenceSet', preference: PREFER(2, 1, true) });
  assert.deepEqual(replan(pinned, MODEL), { generation: 2, tp: 2, pp: 1, ep: 1, layers: [[0, 22]], ranks: ['a', 'b'] });
  assert.deepEqual(shapesToTry(3, MODEL, PREFER(1, 1)), [{ tp: 1, pp: 3 }, { tp: 2, pp: 1 }]);
});

test('uneven speeds split layers in proportion; noise-level differences split evenly', () => {
  const fast = node('fast', { gflops: 30 });
  const slow = node('slow', { gflops: 10 });
  assert.deepEqual(place([fast, slow], MODEL, PREFER(1, 2)).layers, [[0, 16], [16, 22]]);
  const near = node('near', { gflops: 14 });
  assert.deepEqual(place([slow, near], MODEL, PREFER(1, 2)).layers, [[0, 11], [11, 22]]);
  // Workers on one machine: their median rate, whatever each measured.
  const oneHost = [node('p', { gflops: 30, address: 'h' }), node('q', { gflops: 10, address: 'h' }), node('r', { gflops: 12, address: 'h' })];
  assert.deepEqual(place(oneHost, MODEL, PREFER(1, 3)).layers, [[0, 8], [8, 15], [15, 22]]);
});

test('memory caps a stage and the rest goes elsewhere; a model that fits nowhere is refused with a code', () => {
  // 2 copies × (34 MiB ends + 5 layers × 40 MiB) fits 500 MiB; the big node takes the rest.
  const small = node('small', { memoryMib: 500 });
  const big = node('big', { memoryMib: 4096 });
  const plan = place([small, big], MODEL, PREFER(1, 2));
  assert.deepEqual(plan.layers, [[0, 5], [5, 22]]);
  assert.throws(() => place([node('x', { memoryMib: 300 }), node('y', { memoryMib: 300 })], MODEL, PREFER(1, 2)), { code: 'TESSERA_ERR_NO_PLACEMENT' });
  // Four layers: the embedding and a whole layer overflow a 70 MiB stage at tp 1, halves fit: a larger degree is tried last.
  const short: ModelFootprint = { ...MODEL, numLayers: 4, layerBytes: [40, 40, 40, 40].map((m) => m * MIB) };
  const four = ['p', 'q', 'r', 's'].map((name) => node(name, { memoryMib: 140 }));
  const halves = place(four, short, PREFER(1, 4));
  assert.deepEqual([halves.tp, halves.pp, halves.layers], [2, 2, [[0, 2], [2, 4]]]);
});

test('a late rank keeps its place while serving; a lost one leaves; events replay to the same state', () => {
  const nodes = [node('a'), node('b')];
  const plan: Plan = { generation: 1, tp: 1, pp: 2, ep: 1, layers: [[0, 11], [11, 22]], ranks: ['a', 'b'].map(nodeId) };
  const late = apply(serving(nodes, plan), { type: 'HeartbeatMissed', id: nodeId('b'), silentMs: 900 });
  assert.equal(late.nodes[1].health, 'late');
  assert.equal(replan(late, MODEL), undefined);
  const back = apply(late, { type: 'HeartbeatResumed', id: nodeId('b') });
  assert.equal(back.nodes[1].health, 'healthy');
  const events: ClusterEvent[] = [{ type: 'NodeLost', id: nodeId('b'), reason: 'x' }, { type: 'MeshBroke', generation: 1, reason: 'y' }];
  assert.deepEqual(fold(late, events), fold(late, events));
  assert.deepEqual(fold(late, events).nodes.map((n) => n.id), ['a']);
});

test('proportional splits: at least one each, remainders to the earliest', () => {
  assert.deepEqual(proportional(22, [1, 1]), [11, 11]);
  assert.deepEqual(proportional(5, [1, 1, 1]), [2, 2, 1]);
  assert.deepEqual(proportional(4, [100, 1, 1, 1]), [1, 1, 1, 1]);
});
