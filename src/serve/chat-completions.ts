/** POST /v1/chat/completions: messages rendered with the model's chat template; streamed or whole. */
import type { ServerResponse } from 'node:http';
import type { TokenLogprob } from '../engine/sequence.js';
import { FALLBACK_CHAT_TEMPLATE, renderChatTemplate, type ChatMessage } from '../tokenizer/chat-template.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { serveChoices, type ChoiceEndpoint } from './choice-response.js';
import { chatLogprobs } from './logprobs-format.js';
import { parseChatRequest, type ChatRequest } from './openai-request.js';
import { checkModelName, sequenceRequests, type ServingModel } from './serving-model.js';

export async function serveChatCompletion(model: ServingModel, body: unknown, response: ServerResponse): Promise<unknown> {
  const request = parseChatRequest(body);
  checkModelName(model, request.model);
  const promptIds = chatPromptIds(model.tokenizer, request.messages);
  const sequences = sequenceRequests(model, request, [promptIds]);
  return serveChoices(model, request, sequences, promptIds.length, chatEndpoint(model, request), response);
}

/** The conversation as the model's template renders it, ending with an open assistant turn. */
export function chatPromptIds(tokenizer: Tokenizer, messages: ChatMessage[]): number[] {
  const template = tokenizer.chatTemplate ?? FALLBACK_CHAT_TEMPLATE;
  const bosToken = tokenizer.bosId === undefined ? undefined : tokenizer.tokenText(tokenizer.bosId);
  const eosId = tokenizer.eosIds[0];
  const eosToken = eosId === undefined ? undefined : tokenizer.tokenText(eosId);
  const text = renderChatTemplate(template, messages, { bosToken, eosToken, addGenerationPrompt: true });
  const templateHasBos = bosToken !== undefined && text.startsWith(bosToken);
  return tokenizer.encode(text, { addBos: tokenizer.addBosByDefault && !templateHasBos, parseSpecial: true });
}

function chatEndpoint(model: ServingModel, request: ChatRequest): ChoiceEndpoint {
  const logprobsOf = (ids: readonly number[], entries: readonly TokenLogprob[]): ReturnType<typeof chatLogprobs> | null =>
    request.logprobs === undefined ? null : chatLogprobs(model.tokenizer, ids, entries);
  return {
    idPrefix: 'chatcmpl',
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    choice: (result, index) => ({
      index,
      message: { role: 'assistant', content: result.text },
      logprobs: logprobsOf(result.ids, result.logprobs),
      finish_reason: result.finish,
    }),
    chunkChoice: (output, index) => {
      const logprobs = logprobsOf(output.ids, output.logprobs ?? []);
      const delta = output.text === '' && output.finish ? {} : { content: output.text };
      return { index, delta, logprobs, finish_reason: output.finish ?? null };
    },
    // OpenAI opens each choice with the assistant role.
    openingChoice: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
  };
}
