/**
 * A live rank driven by a test that plays its coordinator (fake-coordinator.ts):
 * runWorker in this process (real TLS, real sockets, its real heartbeat
 * thread), taken through prepare and plan for one generation at a time, and
 * well-formed steps to check that it still serves.
 */
import { runWorker } from '../cluster/worker.js';
import { stepMessage, type ControlMessage } from '../cluster/control-message.js';
import type { MeshAddress } from '../parallel/socket-transport.js';
import type { StepRequest } from '../cluster/rank-runner.js';
import { FakeCoordinator, type JoinedWorker } from './fake-coordinator.js';

export type PlanMessage = Extract<ControlMessage, { type: 'plan' }>;

/** The KV pool every step of these tests names. */
export const POOL = { numBlocks: 32, blockSize: 16 };

export interface RankModel {
  path: string;
  modelId: string;
  numLayers: number;
}

export interface LiveRank {
  worker: JoinedWorker;
  /** Settles when runWorker returns: undefined, or the error it ended with. */
  ended: Promise<unknown>;
  generation: number;
}

/** A worker joined to `fake`, not yet prepared. */
export async function joinRank(fake: FakeCoordinator, token: string): Promise<LiveRank> {
  const ended = runWorker({ join: fake.address, token, log: () => undefined }).then(
    () => undefined,
    (error: unknown) => error,
  );
  const worker = await fake.nextWorker();
  return { worker, ended, generation: 0 };
}

/** Prepares `rank` of `size` for a new generation; its mesh address. */
export async function prepare(live: LiveRank, rank: number, size: number): Promise<MeshAddress> {
  live.generation++;
  await live.worker.send({ type: 'prepare', generation: live.generation, rank, size, transport: 'tcp' });
  const listening = await live.worker.expect('listening');
  if (!listening) throw new Error('the rank hung up before it listened');
  return listening.address;
}

export function planFor(live: LiveRank, model: RankModel, addresses: MeshAddress[], meshToken: string, layers: [number, number][]): PlanMessage {
  return { type: 'plan', generation: live.generation, addresses, meshToken, modelPath: model.path, modelId: model.modelId, tp: 1, pp: layers.length, layers, backend: 'reference' };
}

/** A rank of a one-rank mesh, serving. */
export async function servingRank(fake: FakeCoordinator, token: string, model: RankModel): Promise<LiveRank> {
  const live = await joinRank(fake, token);
  await planOne(live, model);
  return live;
}

/** A new generation of a one-rank mesh on `live`; rejects unless the rank is ready. */
export async function planOne(live: LiveRank, model: RankModel): Promise<void> {
  const address = await prepare(live, 0, 1);
  await live.worker.send(planFor(live, model, [address], '0'.repeat(32), [[0, model.numLayers]]));
  if (!(await live.worker.expect('ready'))) throw new Error('the rank hung up instead of loading its plan');
}

/** A well-formed step of three tokens in blocks 0 and 1, logits of the last (`picked`: its token picked on the rank instead). */
/** A well-formed kv-write of positions 0-2 (blocks 0 and 1) of `layer`, every head of stories260K (4 × 8), f32; its body. */
export function validKvWrite(generation: number, layer = 0, fill = 1.5): { message: Extract<ControlMessage, { type: 'kv-write' }>; body: Uint8Array } {
  const values = Float32Array.from({ length: 2 * 3 * 4 * 8 }, (_, i) => fill + i / 64);
  return { message: { type: 'kv-write', generation, pool: { ...POOL }, blockTable: [0, 1], layer, from: 0, count: 3, heads: [0, 4], dtype: 'f32' }, body: new Uint8Array(values.buffer) };
}

/** A well-formed kv-read of the rows validStep writes (positions 0-2 of blocks 0 and 1). */
export function validKvRead(generation: number, id: number): Extract<ControlMessage, { type: 'kv-read' }> {
  return { type: 'kv-read', generation, id, pool: { ...POOL }, runs: [{ blockTable: [0, 1], from: 0, count: 3 }] };
}

export function validStep(generation: number, id: number, picked = false): Extract<ControlMessage, { type: 'step' }> {
  const pick = picked ? { pick: { temperature: 0.8, topK: 40, topP: 0.9, minP: 0.05, u: 0.5 } } : {};
  const request: StepRequest = { blockTable: Int32Array.of(0, 1), ids: Int32Array.of(1, 5, 9), positions: Int32Array.of(0, 1, 2), rows: 'last', ...pick };
  return stepMessage(generation, id, POOL, [request]) as Extract<ControlMessage, { type: 'step' }>;
}
