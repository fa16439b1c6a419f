/** POST /v1/completions: text (or token ids) in, text out; streamed or whole. */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SequenceOutput, SequenceRequest } from '../engine/sequence.js';
import { ApiError } from './api-error.js';
import { ChoiceRun, type ChoiceResult } from './choice-run.js';
import { completionLogprobs } from './logprobs-format.js';
import { parseCompletionRequest, type CompletionRequest } from './openai-request.js';
import { checkCapacity, checkModelName, sequenceRequests, type ServingModel } from './serving-model.js';
import { SseStream } from './sse.js';
import { usageOf, type Usage } from './usage.js';

interface Envelope {
  id: string;
  created: number;
  model: string;
}

export async function serveCompletion(model: ServingModel, body: unknown, response: ServerResponse): Promise<unknown> {
  const request = parseCompletionRequest(body);
  checkModelName(model, request.model);
  if (request.echo) throw new ApiError(400, 'echo is not supported; leave it out and prepend the prompt yourself', 'invalid_request_error', 'echo', 'unsupported');
  const prompts = request.prompts.map((prompt) => ('ids' in prompt ? prompt.ids : encodeText(model, prompt.text)));
  const sequences = sequenceRequests(model, request, prompts);
  checkCapacity(model, sequences.length);
  model.metrics.promptTokens.inc(prompts.reduce((sum, ids) => sum + ids.length, 0));
  const envelope: Envelope = { id: `cmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: model.name };
  if (request.stream) {
    await streamCompletion(model, request, sequences, envelope, response);
    return undefined;
  }
  const run = new ChoiceRun(model.host, sequences, model.metrics);
  run.cancelOnClose(response);
  const results = await run.done;
  return {
    ...envelope,
    object: 'text_completion',
    choices: results.map((result, index) => ({
      index,
      text: result.text,
      logprobs: request.logprobs === undefined ? null : completionLogprobs(model.tokenizer, result.ids, result.logprobs, 0),
      finish_reason: result.finish,
    })),
    usage: usageOf(results, request.n),
  };
}

function encodeText(model: ServingModel, text: string): number[] {
  const tokenizer = model.tokenizer;
  return tokenizer.encode(text, { addBos: tokenizer.addBosByDefault, parseSpecial: false });
}

async function streamCompletion(model: ServingModel, request: CompletionRequest, sequences: SequenceRequest[], envelope: Envelope, response: ServerResponse): Promise<void> {
  const stream = new SseStream(response);
  const textLength = sequences.map(() => 0);
  const chunk = (choices: unknown[], usage?: Usage): unknown => ({ ...envelope, object: 'text_completion', choices, ...(request.includeUsage ? { usage: usage ?? null } : {}) });
  const onOutput = (index: number, output: SequenceOutput): void => {
    if (output.ids.length === 0 && output.text === '' && !output.finish) return;
    const logprobs = request.logprobs === undefined ? null : completionLogprobs(model.tokenizer, output.ids, output.logprobs ?? [], textLength[index]);
    textLength[index] += output.text.length;
    stream.send(chunk([{ index, text: output.text, logprobs, finish_reason: output.finish ?? null }]));
  };
  const run = new ChoiceRun(model.host, sequences, model.metrics, onOutput);
  run.cancelOnClose(response);
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

/** Headers are gone once a stream starts: a failure becomes an error event, then [DONE]. */
export function streamError(stream: SseStream, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  stream.send({ error: { message, type: 'internal_error', param: null, code: (error as { code?: string }).code ?? null } });
  stream.end();
}
