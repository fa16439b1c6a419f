/**
 * The replica API's part in disaggregated prefill and decode (beside
 * replica-protocol.ts). A routed sequence may carry `kv`:
 *
 *   {"receive": {"transfer"}}   decode replica: reserve KV blocks, answer
 *        {"type":"kv-reserved","transfer","skipPositions","endpoints"}
 *        at once (or 429 when its KV cache has no room), take the rows the
 *        prefill replica streams to an endpoint, then
 *        {"type":"kv-received",...} and the outputs from the second token on.
 *   {"send": {"transfer","skipPositions","endpoints"}}   prefill replica:
 *        compute the prompt, stream the KV rows past skipPositions to the
 *        decode replica over the best endpoint, answer the first token's
 *        output, then {"type":"handoff",...} once the decode replica has
 *        everything; the stream ends there (the sequence goes on elsewhere).
 *
 * The load report says each replica's role and its KV endpoints.
 */
import type { TransferId } from '../engine/kv-messages.js';
import type { KvEndpoint, KvLinkKind } from '../disagg/kv-endpoint.js';
import { parseEndpoints } from '../disagg/kv-endpoint.js';
import { badField } from './api-error.js';
import type { RequestFields } from './request-fields.js';

export const REPLICA_ROLES = ['prefill', 'decode', 'both'] as const;
/** What a router sends a replica: prompts to prefill (and hand off), sequences to decode after a transfer, or both (and whole sequences). */
export type ReplicaRole = (typeof REPLICA_ROLES)[number];

export type KvPart = { receive: { transfer: TransferId } } | { send: { transfer: TransferId; skipPositions: number; endpoints: KvEndpoint[] } };

/** In the load report. */
export interface PdLoad {
  role: ReplicaRole;
  /** Whether its engine can move KV at all (one process, CPU backend); if not, the router sends it whole sequences only. */
  kvTransfer: boolean;
  /** Where it takes KV transfers (decode and both roles), best first. */
  endpoints: KvEndpoint[];
}

export type KvReplicaEvent =
  | { type: 'kv-reserved'; transfer: TransferId; skipPositions: number; endpoints: KvEndpoint[] }
  /** Decode side: every row and the prefill's ids are here and the sequence is admitted. Times in ms. */
  | { type: 'kv-received'; transfer: TransferId; bytes: number; wireMs: number; transferMs: number }
  /** Prefill side, last: the decode replica acknowledged the transfer. */
  | { type: 'handoff'; transfer: TransferId; bytes: number; wireMs: number; link: KvLinkKind; prefillMs: number; tailMs: number };

export function isKvEvent(event: { type: string }): event is KvReplicaEvent {
  return event.type === 'kv-reserved' || event.type === 'kv-received' || event.type === 'handoff';
}

const TRANSFER = /^[A-Za-z0-9_-]{8,64}$/;

/** request `kv` of a routed sequence, checked (400s name the field). */
export function parseKvPart(fields: RequestFields): { kv?: KvPart } {
  const kv = fields.object('kv');
  if (!kv) return {};
  const receive = kv.object('receive');
  const send = kv.object('send');
  if ((receive === undefined) === (send === undefined)) throw badField(kv.path('receive'), `${fields.path('kv')} must have exactly one of receive and send`);
  const part = (receive ?? send)!;
  const transfer = part.requiredString('transfer');
  if (!TRANSFER.test(transfer)) throw badField(part.path('transfer'), `${part.path('transfer')} must be 8 to 64 letters, digits, _ or -`);
  if (receive) return { kv: { receive: { transfer: transfer as TransferId } } };
  const skipPositions = part.number('skipPositions', { min: 0, max: 2 ** 31, integer: true }) ?? 0;
  const endpoints = parseEndpoints(part.raw('endpoints'));
  if (!endpoints) throw badField(part.path('endpoints'), `${part.path('endpoints')} must list the decode replica's KV endpoints ({kind: "tcp", host, port} or {kind: "unix", path, hostId})`);
  return { kv: { send: { transfer: transfer as TransferId, skipPositions, endpoints } } };
}
