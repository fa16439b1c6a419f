/**
 * Helpers for tests that run a model on real worker processes: compare a
 * mesh's prefill and decode logits and greedy tokens with one process.
 */
import assert from 'node:assert/strict';
import { Engine } from '../engine/engine.js';
import { openMeshEngine } from './mesh-engine.js';
import type { MeshShape } from '../parallel/mesh.js';
import type { MeshTransportKind } from '../parallel/transport.js';

export interface Expected {
  /** [prompt.length + 1, vocabSize]: the prompt's logits, then the decode step's. */
  logits: Float32Array;
  /** Greedy continuation of the prompt. */
  ids: number[];
}

export async function expectedFromOneProcess(path: string, prompt: number[], maxTokens: number): Promise<Expected> {
  const engine = await Engine.open(path);
  const { ids } = await engine.complete({ promptIds: prompt, maxTokens });
  return { logits: await engine.logits([...prompt, ids[0]]), ids };
}

/**
 * Asserts the mesh gives the same logits (prefill and one decode step) and,
 * through the engine's own loop when `greedy`, the same greedy tokens.
 */
export async function checkMesh(path: string, shape: MeshShape, transport: MeshTransportKind, prompt: number[], expected: Expected, greedy = true): Promise<number[]> {
  // These checks count bytes and ranks: a loaded machine must not pass for a hung worker (no re-shard mid-check).
  const { engine, coordinator } = await openMeshEngine(path, { ...shape, transport, spawn: true, heartbeat: { timeoutMs: 15_000 } });
  const label = `tp=${shape.tp} pp=${shape.pp} over ${transport}`;
  try {
    const vocab = engine.config.vocabSize;
    // Blocks of the engine's pool, the one the ranks mirror.
    const pool = engine.cache;
    assert.ok(pool, 'a mesh engine has one KV pool');
    assert.equal(pool.keys.filter(Boolean).length + pool.values.filter(Boolean).length, 0, 'the driver keeps block accounting without KV pools');
    const { blockTable } = pool.allocate(prompt.length + 1);
    const prefill = await coordinator.step(pool, { blockTable, ids: Int32Array.from(prompt), positions: Int32Array.from(prompt.keys()), rows: 'all' });
    assert.deepEqual(prefill, expected.logits.subarray(0, prompt.length * vocab), `prefill logits, ${label}`);
    const decode = await coordinator.step(pool, { blockTable, ids: Int32Array.of(expected.ids[0]), positions: Int32Array.of(prompt.length), rows: 'last' });
    assert.deepEqual(decode, expected.logits.subarray(prompt.length * vocab), `decode logits, ${label}`);
    pool.release({ keys: pool.keys, values: pool.values, blockTable });
    if (!greedy) return coordinator.bytesRead;
    const { ids } = await engine.complete({ promptIds: prompt, maxTokens: expected.ids.length });
    assert.deepEqual(ids, expected.ids, `greedy tokens, ${label}`);
    return coordinator.bytesRead;
  } finally {
    await coordinator.close();
  }
}
