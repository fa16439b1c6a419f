/**
 * The model a server serves, as request handlers see it: the engine host,
 * the tokenizer (tokenizing stays on the API thread; it is cheap next to a
 * forward pass), the served name, and the prompt rules shared by completions
 * and chat.
 */
import { randomInt } from 'node:crypto';
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import type { Admission } from './admission.js';
import type { EngineHost } from './engine-host.js';
import { samplingParams } from '../engine/sampler.js';
import type { SequenceRequest } from '../engine/sequence.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { ApiError, badField, isRetryableCode } from './api-error.js';
import type { ServeMetrics } from './metrics.js';
import type { GenerationSpec } from './openai-request.js';
import type { PdReplica } from './pd-replica.js';

export interface ServingModel {
  host: EngineHost;
  tokenizer: Tokenizer;
  config: ModelConfig;
  /** The name clients put in `model`. */
  name: string;
  metrics: ServeMetrics;
  /** Unix seconds the server started (GET /v1/models `created`). */
  created: number;
  /** Sequences queued or running beyond which requests get 429. */
  maxActiveSequences: number;
  /** The server's runs in flight, and whether it is draining. */
  admission: Admission;
  /** Its part in disaggregated prefill and decode (replicas; absent on a router). */
  pd?: PdReplica;
}

/** A 503 before any work is queued when this server cannot finish it: draining, or its engine cannot step. */
export function checkServing(model: ServingModel): void {
  model.admission.check();
  const health = model.host.health();
  if (!health.ready) {
    const code = isRetryableCode(health.code) ? health.code! : 'TESSERA_ERR_REPLICA_UNAVAILABLE';
    throw new TesseraError(code, `the engine cannot serve (${health.status}); retry later or on another replica`);
  }
}

export function checkModelName(model: ServingModel, name: string): void {
  if (name !== model.name) {
    throw new ApiError(404, `the model "${name}" does not exist; this server serves "${model.name}" (see GET /v1/models)`, 'invalid_request_error', 'model', 'model_not_found');
  }
}

/** 429 when the queue is full, before any work is queued. */
export function checkCapacity(model: ServingModel, sequences: number): void {
  if (sequences > model.maxActiveSequences) {
    throw new ApiError(400, `the request asks for ${sequences} sequences (prompts × n) but the server holds at most ${model.maxActiveSequences}; send fewer prompts or a smaller n`, 'invalid_request_error', 'n', 'too_many_sequences');
  }
  if (model.host.activeSequences + sequences > model.maxActiveSequences) {
    throw new ApiError(429, `the server is at capacity (${model.maxActiveSequences} sequences queued or running); retry shortly`, 'rate_limit_exceeded', null, 'server_busy');
  }
}

/**
 * The engine requests of an API request: n choices for each prompt, choice i
 * of a seeded request drawing from seed + i (so choices differ but repeat).
 */
export function sequenceRequests(model: ServingModel, spec: GenerationSpec, prompts: readonly number[][]): SequenceRequest[] {
  const maxModelLen = model.host.limits.maxModelLen;
  const outside = spec.logitBias?.find(([id]) => id >= model.config.vocabSize);
  if (outside) throw badField('logit_bias', `logit_bias names token id ${outside[0]}, outside the vocabulary [0, ${model.config.vocabSize})`);
  const requests: SequenceRequest[] = [];
  for (const promptIds of prompts) {
    checkPrompt(model, promptIds);
    const maxTokens = spec.maxTokens ?? maxModelLen - promptIds.length;
    if (promptIds.length + maxTokens > maxModelLen) {
      throw new ApiError(400, `the prompt has ${promptIds.length} tokens and max_tokens asks for ${maxTokens} more, but the context holds ${maxModelLen}; lower max_tokens or shorten the prompt`, 'invalid_request_error', 'max_tokens', 'context_length_exceeded');
    }
    for (let choice = 0; choice < spec.n; choice++) {
      const seed = spec.seed === undefined ? randomInt(2 ** 47) : spec.seed + choice;
      requests.push({
        promptIds,
        maxTokens,
        sampling: samplingParams({ ...spec.sampling, seed }),
        stop: spec.stop,
        ignoreEos: spec.ignoreEos,
        logprobs: spec.logprobs,
        ...(spec.constraint ? { constraint: spec.constraint } : {}),
        ...(spec.logitBias?.length ? { logitBias: spec.logitBias } : {}),
      });
    }
  }
  return requests;
}

function checkPrompt(model: ServingModel, promptIds: readonly number[]): void {
  const maxModelLen = model.host.limits.maxModelLen;
  if (promptIds.length === 0) throw badField('prompt', 'the prompt is empty; give at least one token');
  if (promptIds.length >= maxModelLen) {
    throw new ApiError(400, `the prompt has ${promptIds.length} tokens but the context holds ${maxModelLen}, which must leave room for at least one generated token; shorten the prompt`, 'invalid_request_error', 'prompt', 'context_length_exceeded');
  }
  const vocabSize = model.config.vocabSize;
  const outside = promptIds.find((id) => id >= vocabSize);
  if (outside !== undefined) throw badField('prompt', `token id ${outside} is outside the vocabulary [0, ${vocabSize})`);
}
