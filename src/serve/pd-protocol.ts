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
 *
 *   POST /v1/tessera/kv/probe {endpoints, frames, frameBytes}   prefill
 *        replica: send `frames` frames of filler over the link it uses to
 *        those endpoints; answers the receiver's timing (ProbeResult).
 */
import type { TransferId } from '../engine/kv-messages.js';
import type { KvEndpoint, KvLinkKind } from '../disagg/kv-endpoint.js';
import { parseEndpoints } from '../disagg/kv-endpoint.js';
import { badField } from './api-error.js';
import { RequestFields } from './request-fields.js';

export const REPLICA_ROLES = ['prefill', 'decode', 'both'] as const;

/** Which prompts an engine prefills first (Scheduler's shortestPromptFirst): shortest is a prefill replica's default. */
export const PROMPT_ORDERS = ['shortest', 'arrival'] as const;
export type PromptOrder = (typeof PROMPT_ORDERS)[number];
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

export const REPLICA_KV_PROBE_PATH = '/v1/tessera/kv/probe';

/** The body of a probe request, checked (at most 1 GiB in all: a probe must not tie a link up for long). */
export function parseKvProbe(body: unknown): { endpoints: KvEndpoint[]; frames: number; frameBytes: number } {
  const fields = RequestFields.of(body);
  const endpoints = parseEndpoints(fields.raw('endpoints'));
  if (!endpoints) throw badField('endpoints', 'endpoints must list a decode replica\'s KV endpoints (its load report\'s pd.endpoints)');
  const frames = fields.number('frames', { min: 1, max: 4096, integer: true }) ?? 64;
  const frameBytes = fields.number('frameBytes', { min: 8, max: 2 ** 28, integer: true }) ?? 2 ** 20;
  if (frames * frameBytes > 2 ** 30) throw badField('frames', `a probe of ${frames} × ${frameBytes} bytes is over 1 GiB`);
  fields.rejectUnread();
  return { endpoints, frames, frameBytes };
}

/** A transfer id as routers make them (random, URL-safe). */
export const TRANSFER = /^[A-Za-z0-9_-]{8,64}$/;

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
