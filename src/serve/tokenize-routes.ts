/**
 * POST /tokenize and POST /detokenize, as vLLM's server has them: text (or
 * chat messages, rendered with the model's template as chat completions
 * renders them) to token ids, and ids back to text. They need the API key
 * like /v1 routes, and never touch the engine worker.
 */
import type { ServerResponse } from 'node:http';
import { badField } from './api-error.js';
import { chatPromptIds } from './chat-completions.js';
import { parseChatRequest } from './openai-request.js';
import { RequestFields } from './request-fields.js';
import { checkModelName, type ServingModel } from './serving-model.js';

export async function serveTokenize(model: ServingModel, body: unknown, _response: ServerResponse): Promise<unknown> {
  const fields = RequestFields.of(body);
  const name = fields.string('model');
  if (name !== undefined) checkModelName(model, name);
  const addSpecial = fields.boolean('add_special_tokens') ?? true;
  const withStrings = fields.boolean('return_token_strs') ?? false;
  const prompt = fields.string('prompt');
  const messages = fields.raw('messages');
  let tokens: number[];
  if (prompt !== undefined && messages === undefined) {
    tokens = model.tokenizer.encode(prompt, { addBos: addSpecial && model.tokenizer.addBosByDefault, parseSpecial: false });
  } else if (messages !== undefined && prompt === undefined) {
    // The chat request reader, so messages and tools mean here what they mean to chat completions.
    const chat = parseChatRequest({ model: model.name, messages, tools: fields.raw('tools') });
    tokens = chatPromptIds(model.tokenizer, chat.messages, chat.tools);
  } else {
    throw badField('prompt', 'give either prompt (text) or messages (a chat)');
  }
  fields.rejectUnread();
  return {
    count: tokens.length,
    max_model_len: model.host.limits.maxModelLen,
    tokens,
    token_strs: withStrings ? tokens.map((id) => model.tokenizer.tokenText(id)) : null,
  };
}

export async function serveDetokenize(model: ServingModel, body: unknown, _response: ServerResponse): Promise<unknown> {
  const fields = RequestFields.of(body);
  const name = fields.string('model');
  if (name !== undefined) checkModelName(model, name);
  const tokens = fields.raw('tokens');
  const vocabSize = model.config.vocabSize;
  if (!Array.isArray(tokens) || !tokens.every((id) => Number.isInteger(id) && id >= 0 && id < vocabSize)) {
    throw badField('tokens', `tokens must be a list of token ids in [0, ${vocabSize})`);
  }
  fields.rejectUnread();
  return { prompt: model.tokenizer.decode(tokens as number[]) };
}
