/** POST /v1/chat/completions: messages (and tools) rendered with the model's chat template; streamed or whole. */
import type { ServerResponse } from 'node:http';
import type { TokenLogprob } from '../engine/sequence.js';
import type { SequenceUpdate } from './engine-host.js';
import { FALLBACK_CHAT_TEMPLATE, renderChatTemplate, type ChatMessage } from '../tokenizer/chat-template.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { ChatChoice } from './chat-choice.js';
import { serveChoices, type ChoiceEndpoint } from './choice-response.js';
import { chatLogprobs } from './logprobs-format.js';
import { parseChatRequest, type ChatRequest } from './openai-request.js';
import { checkModelName, sequenceRequests, type ServingModel } from './serving-model.js';
import { toolPrompt } from './tool-prompt.js';
import type { ToolSpec } from './tool-request.js';

export async function serveChatCompletion(model: ServingModel, body: unknown, response: ServerResponse): Promise<unknown> {
  const request = parseChatRequest(body);
  checkModelName(model, request.model);
  const promptIds = chatPromptIds(model.tokenizer, request.messages, request.tools);
  const sequences = sequenceRequests(model, request, [promptIds]);
  return serveChoices(model, request, sequences, promptIds.length, chatEndpoint(model, request, sequences.length), response);
}

/** The conversation as the model's template renders it, ending with an open assistant turn. */
export function chatPromptIds(tokenizer: Tokenizer, messages: ChatMessage[], tools?: ToolSpec): number[] {
  const template = tokenizer.chatTemplate ?? FALLBACK_CHAT_TEMPLATE;
  const bosToken = tokenizer.bosId === undefined ? undefined : tokenizer.tokenText(tokenizer.bosId);
  const eosId = tokenizer.eosIds[0];
  const eosToken = eosId === undefined ? undefined : tokenizer.tokenText(eosId);
  const prompt = tools && tools.choice !== 'none' ? toolPrompt(template, messages, tools.tools) : { messages, tools: undefined };
  const text = renderChatTemplate(template, prompt.messages, { bosToken, eosToken, addGenerationPrompt: true, tools: prompt.tools });
  const templateHasBos = bosToken !== undefined && text.startsWith(bosToken);
  return tokenizer.encode(text, { addBos: tokenizer.addBosByDefault && !templateHasBos, parseSpecial: true });
}

function chatEndpoint(model: ServingModel, request: ChatRequest, choices: number): ChoiceEndpoint {
  const logprobsOf = (ids: readonly number[], entries: readonly TokenLogprob[]): ReturnType<typeof chatLogprobs> | null =>
    request.logprobs === undefined ? null : chatLogprobs(model.tokenizer, ids, entries);
  const replies = Array.from({ length: choices }, () => new ChatChoice(model.tokenizer, request.tools));
  return {
    idPrefix: 'chatcmpl',
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    observe: (output, index) => void replies[index].push(output),
    choice: (result, index) => ({
      index,
      message: replies[index].message(),
      logprobs: logprobsOf(result.ids, result.logprobs),
      finish_reason: replies[index].finishReason(result.finish),
    }),
    chunkChoice: (output, index) => chunkOf(replies[index], output, index, logprobsOf(output.ids, output.logprobs ?? [])),
    // OpenAI opens each choice with the assistant role.
    openingChoice: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
  };
}

/** A streamed choice, or undefined when this output adds nothing to send yet (text held back for tool parsing). */
function chunkOf(reply: ChatChoice, output: SequenceUpdate, index: number, logprobs: unknown): object | undefined {
  const delta = reply.push(output);
  const calls = reply.wireDeltas(delta);
  const body: Record<string, unknown> = {};
  if (delta.content !== '') body.content = delta.content;
  if (calls.length > 0) body.tool_calls = calls;
  if (Object.keys(body).length === 0 && !output.finish && logprobs === null) return undefined;
  return { index, delta: body, logprobs, finish_reason: output.finish ? reply.finishReason(output.finish) : null };
}
