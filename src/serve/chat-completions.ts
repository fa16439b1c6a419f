/** POST /v1/chat/completions: messages rendered with the model's chat template; streamed or whole. */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SequenceOutput, SequenceRequest } from '../engine/sequence.js';
import { FALLBACK_CHAT_TEMPLATE, renderChatTemplate, type ChatMessage } from '../tokenizer/chat-template.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { ChoiceRun, type ChoiceResult } from './choice-run.js';
import { streamError } from './completions.js';
import { chatLogprobs } from './logprobs-format.js';
import { parseChatRequest, type ChatRequest } from './openai-request.js';
import { checkCapacity, checkModelName, sequenceRequests, type ServingModel } from './serving-model.js';
import { SseStream } from './sse.js';
import { usageOf, type Usage } from './usage.js';

interface Envelope {
  id: string;
  created: number;
  model: string;
}

export async function serveChatCompletion(model: ServingModel, body: unknown, response: ServerResponse): Promise<unknown> {
  const request = parseChatRequest(body);
  checkModelName(model, request.model);
  const promptIds = chatPromptIds(model.tokenizer, request.messages);
  const sequences = sequenceRequests(model, request, [promptIds]);
  checkCapacity(model, sequences.length);
  model.metrics.promptTokens.inc(promptIds.length);
  const envelope: Envelope = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: model.name };
  if (request.stream) {
    await streamChat(model, request, sequences, envelope, response);
    return undefined;
  }
  const run = new ChoiceRun(model.host, sequences, model.metrics);
  run.cancelOnClose(response);
  const results = await run.done;
  return {
    ...envelope,
    object: 'chat.completion',
    choices: results.map((result, index) => ({
      index,
      message: { role: 'assistant', content: result.text },
      logprobs: request.logprobs === undefined ? null : chatLogprobs(model.tokenizer, result.ids, result.logprobs),
      finish_reason: result.finish,
    })),
    usage: usageOf(results, request.n),
  };
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

async function streamChat(model: ServingModel, request: ChatRequest, sequences: SequenceRequest[], envelope: Envelope, response: ServerResponse): Promise<void> {
  const stream = new SseStream(response);
  const chunk = (choices: unknown[], usage?: Usage): unknown => ({ ...envelope, object: 'chat.completion.chunk', choices, ...(request.includeUsage ? { usage: usage ?? null } : {}) });
  // OpenAI opens each choice with the assistant role.
  sequences.forEach((_, index) => stream.send(chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])));
  const onOutput = (index: number, output: SequenceOutput): void => {
    if (output.ids.length === 0 && output.text === '' && !output.finish) return;
    const logprobs = request.logprobs === undefined ? null : chatLogprobs(model.tokenizer, output.ids, output.logprobs ?? []);
    const delta = output.text === '' && output.finish ? {} : { content: output.text };
    stream.send(chunk([{ index, delta, logprobs, finish_reason: output.finish ?? null }]));
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
