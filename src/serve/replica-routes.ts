/**
 * The replica side of the router protocol (replica-protocol.ts): a routed
 * sequence runs as a one-choice ChoiceRun (so it counts in this replica's
 * metrics, frees its blocks when the router hangs up, and a drain can end
 * it), its outputs written as NDJSON lines as the engine produces them.
 */
import type { ServerResponse } from 'node:http';
import { TesseraError } from '../core/errors.js';
import { ApiError, badField } from './api-error.js';
import { holdUntilClosed } from './choice-response.js';
import { ChoiceRun } from './choice-run.js';
import { encodeEvent, NDJSON, parseReplicaSubmit, type ReplicaEvent, type ReplicaLoad } from './replica-protocol.js';
import { checkCapacity, checkModelName, checkServing, type ServingModel } from './serving-model.js';

export async function serveReplicaSequence(model: ServingModel, body: unknown, response: ServerResponse): Promise<undefined> {
  checkServing(model);
  const { model: name, request } = parseReplicaSubmit(body);
  checkModelName(model, name);
  checkLimits(model, request.promptIds, request.maxTokens, request.resumeIds ?? []);
  checkCapacity(model, 1);
  model.metrics.promptTokens.inc(request.promptIds.length);
  response.writeHead(200, { 'content-type': NDJSON, 'cache-control': 'no-cache' });
  response.flushHeaders();
  const write = (event: ReplicaEvent): void => {
    if (!response.destroyed && !response.writableEnded) response.write(encodeEvent(event));
  };
  const run = new ChoiceRun(model.host, [request], model.metrics, (_, output) => write({ type: 'output', ...output }));
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
  };
}
