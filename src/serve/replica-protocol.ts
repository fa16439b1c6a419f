/**
 * The replica API a router speaks to `tessera serve` (authenticated with the
 * replica's --api-key, like every /v1 route):
 *
 *   POST /v1/tessera/sequences  {model, request: SequenceRequest}
 *        → 200, NDJSON: one ReplicaEvent per line; the last is an output
 *          with `finish`, or an error. A stream that ends without either
 *          broke (the replica died) and the router resumes it elsewhere.
 *        → 400/404 bad request, 429 busy, 503 draining / cannot serve.
 *   GET  /v1/tessera/load  → ReplicaLoad: a few numbers from the last engine
 *        step, cheap enough to poll every few hundred milliseconds.
 *
 * The request is the engine's own SequenceRequest, seed fixed, in the
 * resume form when `resumeIds` is set (contract #1 of the session plan).
 */
import type { StepStats } from '../engine/engine-core.js';
import { samplingParams, type SamplingParams } from '../engine/sampler.js';
import type { SequenceRequest } from '../engine/sequence.js';
import { badField } from './api-error.js';
import type { EngineLimits, SequenceUpdate } from './engine-host.js';
import { RequestFields } from './request-fields.js';
import { checkConstraint } from './response-format.js';
import type { Constraint } from '../grammar/constraint.js';
import type { LogitBias } from '../engine/guided-sampler.js';
import { parseKvPart, type KvPart, type KvReplicaEvent, type PdLoad } from './pd-protocol.js';

export const REPLICA_SEQUENCES_PATH = '/v1/tessera/sequences';
export const REPLICA_LOAD_PATH = '/v1/tessera/load';
export const NDJSON = 'application/x-ndjson';

export type ReplicaEvent = ({ type: 'output' } & SequenceUpdate) | { type: 'error'; code: string; message: string } | KvReplicaEvent;

export interface ReplicaLoad {
  /** The served model name (what clients put in `model`). */
  model: string;
  vocabSize: number;
  ready: boolean;
  status: string;
  code: string | null;
  draining: boolean;
  limits: EngineLimits;
  /** The engine's gauges and cumulative counters after its latest step. */
  stats: Omit<StepStats, 'expertTokens'>;
  activeSequences: number;
  maxActiveSequences: number;
  /** Its part in disaggregated prefill and decode (absent: an older replica, role both, no KV transfer). */
  pd?: PdLoad;
  /**
   * A random id of this serving process, new at every start (absent: an
   * older replica): a router that sees it change knows the replica was
   * restarted, with an empty prefix cache, even when it came back on its
   * address before the router counted it down.
   */
  instance?: string;
}

export interface ReplicaSubmit {
  model: string;
  request: SequenceRequest;
  /** The sequence's part in a KV transfer (pd-protocol.ts). */
  kv?: KvPart;
}

export function encodeEvent(event: ReplicaEvent): string {
  return `${JSON.stringify(event)}\n`;
}

const MAX_LOGPROBS = 20;

/** The body of POST /v1/tessera/sequences, every field type-checked (400s name the field). */
export function parseReplicaSubmit(body: unknown): ReplicaSubmit {
  const fields = RequestFields.of(body);
  const request = fields.object('request');
  if (!request) throw badField('request', 'request is required: a SequenceRequest');
  const sampling = request.object('sampling');
  if (!sampling) throw badField('request.sampling', 'request.sampling is required');
  return {
    model: fields.requiredString('model'),
    request: {
      promptIds: idList(request, 'promptIds', true),
      maxTokens: request.number('maxTokens', { min: 1, max: 2 ** 31, integer: true }) ?? missing(request, 'maxTokens'),
      sampling: samplingParams(samplingFields(sampling) as Partial<SamplingParams>),
      stop: request.stringList('stop', 16),
      ignoreEos: request.boolean('ignoreEos') ?? false,
      logprobs: request.number('logprobs', { min: 0, max: MAX_LOGPROBS, integer: true }),
      resumeIds: idList(request, 'resumeIds', false),
      ...optionalConstraint(request),
      ...optionalBias(request),
    },
    ...parseKvPart(fields),
  };
}

/** request.constraint, as serve's response_format makes it; compiled here (once per distinct one) so a bad one is a 400. */
function optionalConstraint(fields: RequestFields): { constraint?: Constraint } {
  const value = fields.object('constraint');
  if (!value) return {};
  const type = value.requiredString('type');
  const param = value.path('type');
  if (type === 'json_object') return { constraint: checkConstraint({ type }, param) };
  if (type === 'json_schema') return { constraint: checkConstraint({ type, schema: value.raw('schema') }, param) };
  if (type === 'regex') return { constraint: checkConstraint({ type, pattern: value.requiredString('pattern') }, param) };
  if (type === 'grammar') return { constraint: checkConstraint({ type, grammar: value.requiredString('grammar') }, param) };
  throw badField(param, `${param} must be json_object, json_schema, regex or grammar; got ${JSON.stringify(type)}`);
}

/** request.logitBias: [token id, bias] pairs, biases in [-100, 100]. */
function optionalBias(fields: RequestFields): { logitBias?: LogitBias } {
  const value = fields.raw('logitBias');
  if (value === undefined) return {};
  const valid = Array.isArray(value) && value.every((pair) => Array.isArray(pair) && pair.length === 2 && Number.isSafeInteger(pair[0]) && pair[0] >= 0 && typeof pair[1] === 'number' && Math.abs(pair[1]) <= 100);
  if (!valid) throw badField(fields.path('logitBias'), `${fields.path('logitBias')} must be a list of [token id, bias] pairs, biases in [-100, 100]`);
  return { logitBias: value as [number, number][] };
}

function missing(fields: RequestFields, name: string): never {
  throw badField(fields.path(name), `${fields.path(name)} is required`);
}

function idList(fields: RequestFields, name: string, required: boolean): number[] {
  const value = fields.raw(name);
  if (value === undefined && !required) return [];
  const valid = Array.isArray(value) && (value.length > 0 || !required) && value.every((id) => Number.isSafeInteger(id) && (id as number) >= 0);
  if (!valid) throw badField(fields.path(name), `${fields.path(name)} must be a ${required ? 'non-empty ' : ''}list of token ids`);
  return value as number[];
}

const SAMPLING_KEYS = ['temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'presencePenalty', 'frequencyPenalty', 'seed'] as const;

/** Sampler fields as numbers; samplingParams checks their ranges. A routed request always carries its seed. */
function samplingFields(fields: RequestFields): Record<string, number> {
  const values: Record<string, number> = {};
  for (const key of SAMPLING_KEYS) {
    const value = fields.raw(key);
    if (value === undefined) continue;
    if (typeof value !== 'number') throw badField(fields.path(key), `${fields.path(key)} must be a number`);
    values[key] = value;
  }
  if (values.seed === undefined) throw badField(fields.path('seed'), `${fields.path('seed')} is required: a routed sequence's seed is fixed by the router`);
  return values;
}
