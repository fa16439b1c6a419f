/**
 * The OpenAI request bodies Tessera accepts, checked and normalized:
 * /v1/completions and /v1/chat/completions share sampling, stop, n, stream
 * and logprobs fields; they differ in how the prompt is given.
 */
import type { ChatMessage } from '../tokenizer/chat-template.js';
import type { SamplingParams } from '../engine/sampler.js';
import { badField } from './api-error.js';
import { RequestFields } from './request-fields.js';

/** A prompt as text, or as token ids. */
export type PromptInput = { text: string } | { ids: number[] };

export interface GenerationSpec {
  model: string;
  maxTokens: number | undefined;
  n: number;
  stream: boolean;
  includeUsage: boolean;
  stop: string[];
  /** Sampler fields the client set (OpenAI's temperature default of 1 applies to the rest). */
  sampling: Partial<SamplingParams>;
  seed: number | undefined;
  /** undefined: none; k: chosen token plus the k most likely. */
  logprobs: number | undefined;
  ignoreEos: boolean;
  user: string | undefined;
}

export interface CompletionRequest extends GenerationSpec {
  prompts: PromptInput[];
  echo: boolean;
}

export interface ChatRequest extends GenerationSpec {
  messages: ChatMessage[];
}

export const MAX_N = 16;
const MAX_STOPS = 16;
const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

export function parseCompletionRequest(body: unknown): CompletionRequest {
  const fields = RequestFields.of(body);
  const spec = parseCommon(fields, fields.number('max_tokens', { min: 1, max: 2 ** 31, integer: true }) ?? 16);
  return { ...spec, prompts: parsePrompts(fields.raw('prompt')), echo: fields.boolean('echo') ?? false, logprobs: fields.number('logprobs', { min: 0, max: 20, integer: true }) };
}

export function parseChatRequest(body: unknown): ChatRequest {
  const fields = RequestFields.of(body);
  const maxTokens = fields.number('max_completion_tokens', { min: 1, max: 2 ** 31, integer: true }) ?? fields.number('max_tokens', { min: 1, max: 2 ** 31, integer: true });
  const spec = parseCommon(fields, maxTokens);
  const wantsLogprobs = fields.boolean('logprobs') ?? false;
  const top = fields.number('top_logprobs', { min: 0, max: 20, integer: true });
  if (top !== undefined && !wantsLogprobs) throw badField('top_logprobs', 'top_logprobs needs logprobs: true');
  return { ...spec, messages: parseMessages(fields.raw('messages')), logprobs: wantsLogprobs ? (top ?? 0) : undefined };
}

function parseCommon(fields: RequestFields, maxTokens: number | undefined): GenerationSpec {
  const streamOptions = fields.object('stream_options');
  const stream = fields.boolean('stream') ?? false;
  const sampling: Partial<SamplingParams> = {
    temperature: fields.number('temperature', { min: 0, max: 2 }) ?? 1,
    topP: fields.number('top_p', { min: 0, max: 1, exclusiveMin: true }),
    topK: fields.number('top_k', { min: -1, max: 2 ** 31, integer: true }),
    minP: fields.number('min_p', { min: 0, max: 1 }),
    presencePenalty: fields.number('presence_penalty', { min: -2, max: 2 }),
    frequencyPenalty: fields.number('frequency_penalty', { min: -2, max: 2 }),
    repetitionPenalty: fields.number('repetition_penalty', { min: 0, max: 100, exclusiveMin: true }),
  };
  for (const key of Object.keys(sampling) as (keyof SamplingParams)[]) if (sampling[key] === undefined) delete sampling[key];
  return {
    model: fields.requiredString('model'),
    maxTokens,
    n: fields.number('n', { min: 1, max: MAX_N, integer: true }) ?? 1,
    stream,
    includeUsage: stream && (streamOptions?.boolean('include_usage') ?? false),
    stop: fields.stringList('stop', MAX_STOPS),
    sampling,
    seed: fields.number('seed', { min: -(2 ** 53) + 1, max: 2 ** 53 - 1, integer: true }),
    logprobs: undefined,
    ignoreEos: fields.boolean('ignore_eos') ?? false,
    user: fields.string('user'),
  };
}

function isIdList(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((id) => typeof id === 'number' && Number.isInteger(id) && id >= 0);
}

/** string | string[] | number[] | number[][] */
function parsePrompts(value: unknown): PromptInput[] {
  const wrong = (): never => {
    throw badField('prompt', 'prompt must be a string, a list of strings, a list of token ids, or a list of such lists');
  };
  if (value === undefined || value === null) throw badField('prompt', 'prompt is required');
  if (typeof value === 'string') return [{ text: value }];
  if (!Array.isArray(value) || value.length === 0) return wrong();
  if (value.every((item) => typeof item === 'string')) return (value as string[]).map((text) => ({ text }));
  if (isIdList(value)) return [{ ids: value }];
  if (value.every(isIdList)) return (value as number[][]).map((ids) => ({ ids }));
  return wrong();
}

function parseMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw badField('messages', 'messages must be a non-empty list of {role, content}');
  return value.map((item, index) => {
    const param = `messages[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw badField(param, `${param} must be an object with role and content`);
    const { role, content } = item as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !ROLES.has(role)) throw badField(`${param}.role`, `${param}.role must be one of ${[...ROLES].join(', ')}`);
    return { role, content: messageText(content, `${param}.content`) };
  });
}

/** A string, null (assistant turns), or a list of {type: 'text', text} parts. */
function messageText(content: unknown, param: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => {
        const { type, text } = (part ?? {}) as { type?: unknown; text?: unknown };
        if (type !== 'text' || typeof text !== 'string') throw badField(param, `${param} parts must be {"type": "text", "text": "..."}; only text is supported`);
        return text;
      })
      .join('');
  }
  throw badField(param, `${param} must be a string or a list of text parts`);
}
