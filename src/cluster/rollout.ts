/**
 * Setting up one plan generation on its nodes: `prepare` (each rank opens a
 * mesh listener and says where), `plan` (every rank's address, the model and
 * its stage; each rank connects to its peers and re-shards its weights),
 * then `ready` from every rank. Fails as soon as any rank fails or goes away.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { CoordinatorOptions } from './coordinator-options.js';
import { TesseraError } from '../core/errors.js';
import { loadNativeComm } from '../parallel/native-comm.js';
import type { MeshTransportKind, TransportChoice } from '../parallel/transport.js';
import type { NodeId, Plan } from './cluster-state.js';
import type { ControlMessage } from './control-message.js';
import type { NodeLink } from './node-link.js';
import type { RankLoad } from './reshard-log.js';

type PlanMessage = Extract<ControlMessage, { type: 'plan' }>;

/** What every plan message carries besides the layout. */
export type PlanModel = Pick<PlanMessage, 'modelPath' | 'modelId' | 'tokenizerPath' | 'backend' | 'trace' | 'threads' | 'kvCacheDtype' | 'rowShare'>;

/**
 * The model part of a plan message. Forked ranks share this machine's cores: more busy threads than cores collapses
 * throughput, fewer wastes them. `rowShare`: the driver's shared-rows overlap (sharedRowsOverlap), for every rank alike.
 */
export function planModel(options: CoordinatorOptions, plan: Plan, modelId: string, rowShare: number): PlanModel {
  const { modelPath, tokenizerPath, backend, trace, kvCacheDtype } = options;
  const threads = options.threads ?? (options.spawn ? Math.max(1, Math.floor(availableParallelism() / plan.ranks.length)) : undefined);
  return { modelPath, modelId, tokenizerPath, backend: backend ?? 'reference', trace: trace !== undefined, threads, kvCacheDtype, rowShare };
}

/**
 * The transport of one plan. auto: shared memory when every rank of the plan
 * is a process forked here and the addon (which maps the segments) is
 * built, else TCP, since a worker that joined may be on another host. Chosen
 * per plan, so a forked mesh that a remote worker joins moves to TCP.
 */
export function planTransport(choice: TransportChoice, plan: Plan, links: ReadonlyMap<NodeId, NodeLink>): MeshTransportKind {
  if (choice !== 'auto') return choice;
  const forked = plan.ranks.every((id) => links.get(id)?.child !== undefined);
  return forked && loadNativeComm() !== undefined ? 'shm' : 'tcp';
}

export async function rollOut(plan: Plan, links: ReadonlyMap<NodeId, NodeLink>, model: PlanModel, transport: MeshTransportKind): Promise<RankLoad[]> {
  const generation = plan.generation;
  const rankLinks = plan.ranks.map((id) => {
    const link = links.get(id);
    if (!link) throw new TesseraError('TESSERA_ERR_RANK_LOST', `node ${id} of plan ${generation} is gone`);
    return link;
  });
  const size = rankLinks.length;
  const listening = settled(Promise.all(rankLinks.map((link) => link.expect('listening', generation))));
  await Promise.all(rankLinks.map((link, rank) => link.send({ type: 'prepare', generation, rank, size, transport })));
  const addresses = (await listening).map((message) => message.address);
  const message: PlanMessage = {
    type: 'plan',
    generation,
    addresses,
    meshToken: randomBytes(16).toString('hex'),
    tp: plan.tp,
    pp: plan.pp,
    ep: plan.ep,
    layers: plan.layers.map(([start, end]) => [start, end]),
    ...model,
  };
  const ready = settled(Promise.all(rankLinks.map((link) => link.expect('ready', generation))));
  await Promise.all(rankLinks.map((link) => link.send(message)));
  const loads = await ready;
  return loads.map((load, rank) => ({ rank, node: plan.ranks[rank], bytesRead: load.bytesRead, newBytes: load.newBytes, bytesHeld: load.bytesHeld, loadMs: load.loadMs }));
}

/** `promise`, marked handled: a send that fails first must not leave its rejection unobserved. */
function settled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
