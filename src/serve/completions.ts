/** POST /v1/completions: text (or token ids) in, text out; streamed or whole. */
import type { ServerResponse } from 'node:http';
import type { TokenLogprob } from '../engine/sequence.js';
import { ApiError } from './api-error.js';
import { serveChoices, type ChoiceEndpoint } from './choice-response.js';
import { completionLogprobs } from './logprobs-format.js';
import { parseCompletionRequest, type CompletionRequest } from './openai-request.js';
import { checkModelName, sequenceRequests, type ServingModel } from './serving-model.js';

export async function serveCompletion(model: ServingModel, body: unknown, response: ServerResponse): Promise<unknown> {
  const request = parseCompletionRequest(body);
  checkModelName(model, request.model);
  if (request.echo) throw new ApiError(400, 'echo is not supported; leave it out and prepend the prompt yourself', 'invalid_request_error', 'echo', 'unsupported');
  const prompts = request.prompts.map((prompt) => ('ids' in prompt ? prompt.ids : encodeText(model, prompt.text)));
  const sequences = sequenceRequests(model, request, prompts);
  const promptTokens = prompts.reduce((sum, ids) => sum + ids.length, 0);
  return serveChoices(model, request, sequences, promptTokens, completionEndpoint(model, request, sequences.length), response);
}

function encodeText(model: ServingModel, text: string): number[] {
  const tokenizer = model.tokenizer;
  return tokenizer.encode(text, { addBos: tokenizer.addBosByDefault, parseSpecial: false });
}

function completionEndpoint(model: ServingModel, request: CompletionRequest, choices: number): ChoiceEndpoint {
  const logprobsOf = (ids: readonly number[], entries: readonly TokenLogprob[], offset: number): ReturnType<typeof completionLogprobs> | null =>
    request.logprobs === undefined ? null : completionLogprobs(model.tokenizer, ids, entries, offset);
  // A chunk's text_offset continues from the text its choice has already streamed.
  const textLength = new Array<number>(choices).fill(0);
  return {
    idPrefix: 'cmpl',
    object: 'text_completion',
    chunkObject: 'text_completion',
    choice: (result, index) => ({
      index,
      text: result.text,
      logprobs: logprobsOf(result.ids, result.logprobs, 0),
      finish_reason: result.finish,
    }),
    chunkChoice: (output, index) => {
      const logprobs = logprobsOf(output.ids, output.logprobs ?? [], textLength[index]);
      textLength[index] += output.text.length;
      return { index, text: output.text, logprobs, finish_reason: output.finish ?? null };
    },
  };
}
