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
import { array, bool, int, nullable, num, object, oneOf, optional, str, tagged, type Schema } from '../core/schema.js';
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

/** KV events (pd-protocol.ts) pass as their own protocol reads them: not yet checked field by field (open). */
function kvEvent<T>(): Schema<T> {
  return (value) => value as T;
}

export const replicaEventSchema: Schema<ReplicaEvent> = tagged<ReplicaEvent>({
  output,
  handoff: kvEvent(),
  'kv-reserved': kvEvent(),
  'kv-received': kvEvent(),
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
    // A prefill/decode replica's KV figures (pd-protocol.ts): passed on as sent, not yet checked (open).
    pd: (value: unknown) => value as ReplicaLoad['pd'],
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
