/**
 * The replica side of the router protocol (replica-protocol.ts): a routed
 * sequence runs as a one-choice ChoiceRun (so it counts in this replica's
 * metrics, frees its blocks when the router hangs up, and a drain can end
 * it), its outputs written as NDJSON lines as the engine produces them.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { TesseraError } from '../core/errors.js';
import { ApiError, badField } from './api-error.js';
import { holdUntilClosed } from './choice-response.js';
import { ChoiceRun } from './choice-run.js';
import { encodeEvent, NDJSON, parseReplicaSubmit, type ReplicaEvent, type ReplicaLoad } from './replica-protocol.js';
import { checkCapacity, checkModelName, checkServing, type ServingModel } from './serving-model.js';
import type { EngineHost } from './engine-host.js';
import type { SequenceRequest } from '../engine/sequence.js';
import { serveKvSequence } from './pd-routes.js';

export async function serveReplicaSequence(model: ServingModel, body: unknown, response: ServerResponse): Promise<undefined> {
  checkServing(model);
  const { model: name, request, kv } = parseReplicaSubmit(body);
  checkModelName(model, name);
  checkLimits(model, request.promptIds, request.maxTokens, request.resumeIds ?? []);
  checkCapacity(model, 1);
  model.metrics.promptTokens.inc(request.promptIds.length);
  if (kv) return serveKvSequence(model, request, kv, response);
  return streamSequence(model, model.host, request, response);
}

/** A 200 NDJSON stream of one sequence's events, as its run produces them; `opened` writes the events that go before the outputs. */
export function openNdjson(response: ServerResponse): (event: ReplicaEvent) => void {
  response.writeHead(200, { 'content-type': NDJSON, 'cache-control': 'no-cache' });
  response.flushHeaders();
  return (event) => {
    if (!response.destroyed && !response.writableEnded) response.write(encodeEvent(event));
  };
}

/** Runs one sequence on `host` as a one-choice ChoiceRun and streams its outputs (after what `opened` writes first). */
export async function streamSequence(model: ServingModel, host: EngineHost, request: SequenceRequest, response: ServerResponse, opened?: (write: (event: ReplicaEvent) => void) => void): Promise<undefined> {
  const write = openNdjson(response);
  opened?.(write);
  const run = new ChoiceRun(host, [request], model.metrics, (_, output) => write({ type: 'output', ...output }));
  run.cancelOnClose(response);
  holdUntilClosed(model, run, response);
  try {
    await run.done;
  } catch (error) {
    const coded = error instanceof TesseraError ? error : new TesseraError('TESSERA_ERR_INTERNAL', String(error));
    write({ type: 'error', code: coded.code, message: coded.message });
  }
  if (!response.destroyed) response.end();
  return undefined;
}

/** The checks the engine would make later, made now so a bad request is a 400 and not a broken stream. */
function checkLimits(model: ServingModel, promptIds: readonly number[], maxTokens: number, resumeIds: readonly number[]): void {
  const maxModelLen = model.host.limits.maxModelLen;
  if (promptIds.length + maxTokens > maxModelLen) {
    throw new ApiError(400, `the prompt has ${promptIds.length} tokens and maxTokens asks for ${maxTokens} more, but the context holds ${maxModelLen}`, 'invalid_request_error', 'request.maxTokens', 'context_length_exceeded');
  }
  if (resumeIds.length >= maxTokens) throw badField('request.resumeIds', `resumeIds has ${resumeIds.length} ids, which already reach maxTokens ${maxTokens}`);
  const vocabSize = model.config.vocabSize;
  const outside = [...promptIds, ...resumeIds].find((id) => id >= vocabSize);
  if (outside !== undefined) throw badField('request', `token id ${outside} is outside the vocabulary [0, ${vocabSize})`);
}

/** Each served model's instance id (ReplicaLoad.instance), made when it first reports its load. */
const instances = new WeakMap<ServingModel, string>();

function instanceOf(model: ServingModel): string {
  let id = instances.get(model);
  if (id === undefined) instances.set(model, (id = randomUUID()));
  return id;
}

export function replicaLoad(model: ServingModel): ReplicaLoad {
  const health = model.host.health();
  const { expertTokens: _, ...stats } = model.host.stats();
  const draining = model.admission.draining;
  return {
    model: model.name,
    vocabSize: model.config.vocabSize,
    ready: health.ready && !draining,
    status: draining ? 'draining' : health.status,
    code: draining ? 'TESSERA_ERR_DRAINING' : (health.code ?? null),
    draining,
    limits: model.host.limits,
    stats,
    activeSequences: model.host.activeSequences,
    maxActiveSequences: model.maxActiveSequences,
    ...(model.pd ? { pd: model.pd.load } : {}),
    instance: instanceOf(model),
  };
}
