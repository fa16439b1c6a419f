/**
 * The OpenAI request bodies Tessera accepts, checked and normalized:
 * /v1/completions and /v1/chat/completions share sampling, stop, n, stream,
 * logprobs, logit_bias and response_format; they differ in how the prompt
 * is given, and chat adds tools. A field neither reads is a 400 naming it,
 * except the few each lists as accepted and ignored.
 */
import type { Constraint } from '../grammar/constraint.js';
import type { LogitBias } from '../engine/guided-sampler.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import type { SamplingParams } from '../engine/sampler.js';
import { ApiError, badField } from './api-error.js';
import { RequestFields } from './request-fields.js';
import { parseResponseFormat } from './response-format.js';
import { templateToolCall } from './tool-prompt.js';
import { parseTools, toolConstraint, type ToolSpec } from './tool-request.js';

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
  /** What the output must be (response_format, or the tool-call form of tool_choice required / a function). */
  constraint: Constraint | undefined;
  /** [id, bias] pairs; ids are checked against the vocabulary when the model is known. */
  logitBias: LogitBias | undefined;
}

export interface CompletionRequest extends GenerationSpec {
  prompts: PromptInput[];
  echo: boolean;
}

export interface ChatRequest extends GenerationSpec {
  messages: ChatMessage[];
  tools: ToolSpec | undefined;
}

export const MAX_N = 16;
const MAX_STOPS = 16;
const MAX_LOGIT_BIAS = 1024;
const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);
/** Accepted and ignored, as documented: they ask for nothing the output depends on. */
const CHAT_IGNORED = ['store', 'metadata', 'service_tier', 'prompt_cache_key', 'safety_identifier'];
const COMPLETION_IGNORED = ['metadata'];

export function parseCompletionRequest(body: unknown): CompletionRequest {
  const fields = RequestFields.of(body);
  const spec = parseCommon(fields, fields.number('max_tokens', { min: 1, max: 2 ** 31, integer: true }) ?? 16);
  const bestOf = fields.number('best_of', { min: 1, max: MAX_N, integer: true });
  if (bestOf !== undefined && bestOf !== spec.n) throw new ApiError(400, 'best_of other than n is not supported; leave it out', 'invalid_request_error', 'best_of', 'unsupported_field');
  const request = { ...spec, prompts: parsePrompts(fields.raw('prompt')), echo: fields.boolean('echo') ?? false, logprobs: fields.number('logprobs', { min: 0, max: 20, integer: true }) };
  fields.rejectUnread(COMPLETION_IGNORED);
  return request;
}

export function parseChatRequest(body: unknown): ChatRequest {
  const fields = RequestFields.of(body);
  const maxTokens = fields.number('max_completion_tokens', { min: 1, max: 2 ** 31, integer: true }) ?? fields.number('max_tokens', { min: 1, max: 2 ** 31, integer: true });
  const spec = parseCommon(fields, maxTokens);
  const wantsLogprobs = fields.boolean('logprobs') ?? false;
  const top = fields.number('top_logprobs', { min: 0, max: 20, integer: true });
  if (top !== undefined && !wantsLogprobs) throw badField('top_logprobs', 'top_logprobs needs logprobs: true');
  const modalities = fields.raw('modalities');
  if (modalities !== undefined && JSON.stringify(modalities) !== '["text"]') throw badField('modalities', 'modalities must be ["text"]; Tessera writes text only');
  const tools = parseTools(fields);
  const toolForm = tools && toolConstraint(tools);
  if (toolForm && spec.constraint) throw badField('response_format', 'response_format cannot be combined with tool_choice "required" or a named function, which fix the reply to a tool call');
  const messages = parseMessages(fields.raw('messages'));
  fields.rejectUnread(CHAT_IGNORED);
  return { ...spec, constraint: spec.constraint ?? toolForm, messages, tools, logprobs: wantsLogprobs ? (top ?? 0) : undefined };
}

function parseCommon(fields: RequestFields, maxTokens: number | undefined): GenerationSpec {
  const streamOptions = fields.object('stream_options');
  // Padding chunks against side channels: Tessera sends none, so the option changes nothing.
  streamOptions?.boolean('include_obfuscation');
  const includeUsage = streamOptions?.boolean('include_usage') ?? false;
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
    includeUsage: stream && includeUsage,
    stop: fields.stringList('stop', MAX_STOPS),
    sampling,
    seed: fields.number('seed', { min: -(2 ** 53) + 1, max: 2 ** 53 - 1, integer: true }),
    logprobs: undefined,
    ignoreEos: fields.boolean('ignore_eos') ?? false,
    user: fields.string('user'),
    constraint: parseResponseFormat(fields),
    logitBias: parseLogitBias(fields.raw('logit_bias')),
  };
}

/** {"token id": bias}: keys are decimal token ids, biases in [-100, 100]. */
function parseLogitBias(value: unknown): LogitBias | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badField('logit_bias', 'logit_bias must be an object {"token id": bias}');
  const entries = Object.entries(value);
  if (entries.length > MAX_LOGIT_BIAS) throw badField('logit_bias', `logit_bias may name at most ${MAX_LOGIT_BIAS} tokens`);
  return entries.map(([key, bias]): [number, number] => {
    if (!/^(0|[1-9][0-9]{0,9})$/.test(key)) throw badField('logit_bias', `logit_bias keys must be token ids (decimal integers); got ${JSON.stringify(key)}`);
    if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -100 || bias > 100) throw badField('logit_bias', `logit_bias[${key}] must be a number in [-100, 100]; got ${JSON.stringify(bias)}`);
    return [Number(key), bias];
  });
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
    const fields = RequestFields.within(item as Record<string, unknown>, `${param}.`);
    const role = fields.requiredString('role');
    if (!ROLES.has(role)) throw badField(`${param}.role`, `${param}.role must be one of ${[...ROLES].join(', ')}`);
    const message: ChatMessage = { role, content: messageText(fields.raw('content'), `${param}.content`) };
    const name = fields.string('name');
    if (name !== undefined) message.name = name;
    const callId = fields.string('tool_call_id');
    if (callId !== undefined) message.tool_call_id = callId;
    const calls = fields.raw('tool_calls');
    if (calls !== undefined) message.tool_calls = parseMessageToolCalls(calls, `${param}.tool_calls`);
    // An earlier reply's refusal text: nothing the next reply depends on.
    fields.rejectUnread(['refusal']);
    return message;
  });
}

function parseMessageToolCalls(value: unknown, param: string): ChatMessage['tool_calls'] {
  if (!Array.isArray(value)) throw badField(param, `${param} must be a list of tool calls`);
  return value.map((call, index) => {
    const { id, type, function: fn } = (call ?? {}) as { id?: unknown; type?: unknown; function?: { name?: unknown; arguments?: unknown } };
    if (typeof id !== 'string' || type !== 'function' || typeof fn?.name !== 'string' || typeof fn.arguments !== 'string') {
      throw badField(`${param}[${index}]`, `${param}[${index}] must be {"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}`);
    }
    return templateToolCall(id, fn.name, fn.arguments);
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
