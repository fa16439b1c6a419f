/**
 * What a router accepts from a replica (replica-protocol.ts), checked as it
 * arrives: each NDJSON event of a sequence and each load report. A replica
 * is a peer, not part of the router: a malformed line fails that sequence
 * with a connection failure (the router resumes it elsewhere) rather than
 * reaching a client or a counter unchecked. Keys a newer replica adds are
 * dropped, not refused.
 */
import type { TokenLogprob } from '../engine/sequence.js';
import type { StepStats } from '../engine/engine-core.js';
import { KV_DTYPES } from '../core/kv-dtype.js';
import { array, bool, either, int, nullable, num, object, oneOf, optional, str, tagged, type Schema } from '../core/schema.js';
import type { TransferId } from '../engine/kv-messages.js';
import type { KvEndpoint } from '../disagg/kv-endpoint.js';
import { REPLICA_ROLES, TRANSFER, type KvReplicaEvent, type PdLoad } from './pd-protocol.js';
import { TesseraError } from '../core/errors.js';
import type { EngineLimits } from './engine-host.js';
import type { ReplicaEvent, ReplicaLoad } from './replica-protocol.js';

const COUNT = int(0, Number.MAX_SAFE_INTEGER);
const TOKEN_ID = int(0, 2 ** 31 - 1);
const CODE = str(64);
const MESSAGE = str(4096);

/** A log-probability: JSON carries -Infinity as null; rounding may leave a certain token's a hair above 0. */
const logprob: Schema<number> = (value, path) => (value === null ? Number.NEGATIVE_INFINITY : num(-Number.MAX_VALUE, 1)(value, path));

const tokenLogprob = object<TokenLogprob>({ logprob, top: array(object<{ id: number; logprob: number }>({ id: TOKEN_ID, logprob }, 'drop'), 1024) }, 'drop');

type Output = Extract<ReplicaEvent, { type: 'output' }>;

const output = object<Output>(
  {
    type: oneOf('output'),
    ids: array(TOKEN_ID, 1 << 16),
    logprobs: optional(array(tokenLogprob, 1 << 16)),
    text: str(1 << 24),
    finish: optional(oneOf('stop', 'length', 'cancelled', 'error')),
    error: optional(object<{ code: string; message: string }>({ code: CODE, message: MESSAGE }, 'drop')),
    promptTokens: COUNT,
    cachedPromptTokens: COUNT,
  },
  'drop',
);

// Disaggregated prefill and decode (pd-protocol.ts): KV endpoints, transfer events, the load report's part.
const TRANSFER_ID = str(64, TRANSFER) as Schema<TransferId>;
const MS = num(0, 1e12);
const unixEndpoint = object<Extract<KvEndpoint, { kind: 'unix' }>>({ kind: oneOf('unix'), path: str(4096), hostId: str(1024) }, 'drop');
const tcpEndpoint = object<Extract<KvEndpoint, { kind: 'tcp' }>>({ kind: oneOf('tcp'), host: str(1024), port: int(1, 65535) }, 'drop');
const endpoint: Schema<KvEndpoint> = either(unixEndpoint, tcpEndpoint, 'a KV endpoint ({kind: "unix", path, hostId} or {kind: "tcp", host, port})');

type KvEvent<K extends KvReplicaEvent['type']> = Extract<KvReplicaEvent, { type: K }>;

const kvReserved = object<KvEvent<'kv-reserved'>>({ type: oneOf('kv-reserved'), transfer: TRANSFER_ID, skipPositions: int(0, 2 ** 31), endpoints: array(endpoint, 8, 1) }, 'drop');
const kvReceived = object<KvEvent<'kv-received'>>({ type: oneOf('kv-received'), transfer: TRANSFER_ID, bytes: COUNT, wireMs: MS, transferMs: MS }, 'drop');
const handoff = object<KvEvent<'handoff'>>({ type: oneOf('handoff'), transfer: TRANSFER_ID, bytes: COUNT, wireMs: MS, link: oneOf('unix', 'tcp'), prefillMs: MS, tailMs: MS }, 'drop');

export const replicaEventSchema: Schema<ReplicaEvent> = tagged<ReplicaEvent>({
  output,
  handoff,
  'kv-reserved': kvReserved,
  'kv-received': kvReceived,
  error: object<Extract<ReplicaEvent, { type: 'error' }>>({ type: oneOf('error'), code: CODE, message: MESSAGE }, 'drop'),
});

const limits = object<EngineLimits>(
  { maxModelLen: COUNT, numBlocks: COUNT, blockSize: int(1, 1 << 16), kvCacheDtype: oneOf(...KV_DTYPES), loadMs: num(0, 1e12), backend: str(64), kvTransfer: optional(bool) },
  'drop',
);

const stats = object<Omit<StepStats, 'expertTokens'>>(
  { batchSequences: COUNT, batchTokens: COUNT, waiting: COUNT, running: COUNT, blocksUsed: COUNT, blocksFree: COUNT, prefixQueriedTokens: COUNT, prefixHitTokens: COUNT, preemptions: COUNT },
  'drop',
);

export const replicaLoadSchema: Schema<ReplicaLoad> = object<ReplicaLoad>(
  {
    model: str(1024),
    vocabSize: int(1, 1 << 24),
    ready: bool,
    status: str(256),
    code: nullable(CODE),
    draining: bool,
    limits,
    stats,
    activeSequences: COUNT,
    maxActiveSequences: COUNT,
    pd: optional(object<PdLoad>({ role: oneOf(...REPLICA_ROLES), kvTransfer: bool, endpoints: array(endpoint, 8) }, 'drop')),
    instance: optional(str(64)),
  },
  'drop',
);

/** A replica's JSON text, parsed and checked; a TESSERA_ERR_PROTOCOL error naming the field otherwise. */
export function parseReplicaJson<T>(text: string, schema: Schema<T>, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_PROTOCOL', `${what} is not JSON (${(error as Error).message.slice(0, 80)})`);
  }
  return schema(value, what);
}
