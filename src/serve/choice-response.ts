/**
 * The response flow /v1/completions and /v1/chat/completions share: capacity
 * and metrics, the id envelope, then either one JSON body with every choice
 * and the usage, or a stream of chunks. An endpoint supplies only its names
 * and how a choice looks.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SequenceRequest } from '../engine/sequence.js';
import type { SequenceUpdate } from './engine-host.js';
import { errorBody, toApiError } from './api-error.js';
import { ChoiceRun, type ChoiceResult } from './choice-run.js';
import type { GenerationSpec } from './openai-request.js';
import { checkCapacity, checkServing, type ServingModel } from './serving-model.js';
import { SseStream } from './sse.js';
import { usageOf, type Usage } from './usage.js';

/** What differs between the endpoints; built per request, so its functions may keep per-choice state. */
export interface ChoiceEndpoint {
  /** Start of the response id, before a random UUID. */
  idPrefix: string;
  /** `object` of a whole response. */
  object: string;
  /** `object` of each streamed chunk. */
  chunkObject: string;
  /** A choice of a whole response. */
  choice(result: ChoiceResult, index: number): object;
  /** A streamed choice for one output that carries something; undefined sends nothing (text held back). */
  chunkChoice(output: SequenceUpdate, index: number): object | undefined;
  /** Sees every output of a whole (not streamed) response, as chunkChoice does when streaming. */
  observe?(output: SequenceUpdate, index: number): void;
  /** A choice sent for every index before any output, where the endpoint opens its choices. */
  openingChoice?(index: number): object;
}

type ChoiceRequest = Pick<GenerationSpec, 'n' | 'stream' | 'includeUsage'>;

type Chunk = (choices: object[], usage?: Usage) => unknown;

interface Envelope {
  id: string;
  created: number;
  model: string;
}

/** The JSON body of a whole response, or undefined once the response has been streamed. */
export async function serveChoices(
  model: ServingModel,
  request: ChoiceRequest,
  sequences: SequenceRequest[],
  promptTokens: number,
  endpoint: ChoiceEndpoint,
  response: ServerResponse,
): Promise<unknown> {
  checkServing(model);
  checkCapacity(model, sequences.length);
  model.metrics.promptTokens.inc(promptTokens);
  const envelope: Envelope = { id: `${endpoint.idPrefix}-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: model.name };
  if (request.stream) {
    await streamChoices(model, request, sequences, envelope, endpoint, response);
    return undefined;
  }
  const observe = endpoint.observe?.bind(endpoint);
  const run = new ChoiceRun(model.host, sequences, model.metrics, observe && ((index, output) => observe(output, index)));
  run.cancelOnClose(response);
  holdUntilClosed(model, run, response);
  const results = await run.done;
  return {
    ...envelope,
    object: endpoint.object,
    choices: results.map((result, index) => endpoint.choice(result, index)),
    usage: usageOf(results, request.n),
  };
}

async function streamChoices(
  model: ServingModel,
  request: ChoiceRequest,
  sequences: SequenceRequest[],
  envelope: Envelope,
  endpoint: ChoiceEndpoint,
  response: ServerResponse,
): Promise<void> {
  const stream = new SseStream(response);
  const chunk: Chunk = (choices, usage) => ({ ...envelope, object: endpoint.chunkObject, choices, ...(request.includeUsage ? { usage: usage ?? null } : {}) });
  const opening = endpoint.openingChoice;
  if (opening) sequences.forEach((_, index) => stream.send(chunk([opening(index)])));
  const onOutput = (index: number, output: SequenceUpdate): void => {
    if (output.ids.length === 0 && output.text === '' && !output.finish) return;
    const choice = endpoint.chunkChoice(output, index);
    if (choice) stream.send(chunk([choice]));
  };
  const run = new ChoiceRun(model.host, sequences, model.metrics, onOutput);
  run.cancelOnClose(response);
  holdUntilClosed(model, run, response);
  let results: ChoiceResult[];
  try {
    results = await run.done;
  } catch (error) {
    streamError(stream, error);
    return;
  }
  if (request.includeUsage) stream.send(chunk([], usageOf(results, request.n)));
  stream.end();
}

/** The server holds the run (a drain waits for it, or aborts it) until its response has ended. */
export function holdUntilClosed(model: ServingModel, run: ChoiceRun, response: ServerResponse): void {
  const release = model.admission.track(run);
  response.once('close', release);
  if (response.destroyed) release();
}

/** Headers are gone once a stream starts: a failure becomes an error event (shaped as its status would be), then [DONE]. */
function streamError(stream: SseStream, error: unknown): void {
  stream.send(errorBody(toApiError(error)));
  stream.end();
}
