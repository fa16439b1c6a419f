/**
 * fast-check arbitraries for request bodies derived from the server's
 * schema: each known field is left out, given a value the route accepts,
 * or given any JSON value; unknown fields turn up now and then. Most bodies
 * so come close to valid (they reach the engine), and the rest probe the
 * validators one wrong field at a time or all at once.
 */
import fc from 'fast-check';
import { REPLICA_SEQUENCES_PATH } from '../serve/replica-protocol.js';

type Fields = Record<string, fc.Arbitrary<unknown>>;

/** A field that is valid most of the time. */
function field(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof({ arbitrary: valid, weight: 24 }, { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 1 });
}

/** An object with any subset of `fields` (each valid or not) and sometimes a stray key. */
function body(fields: Fields, required: readonly string[] = []): fc.Arbitrary<Record<string, unknown>> {
  const record = fc.record(Object.fromEntries(Object.entries(fields).map(([name, arbitrary]) => [name, field(arbitrary)])), {
    requiredKeys: required.filter((name) => name in fields),
  });
  const stray = fc.option(fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }), { nil: undefined });
  return fc.tuple(record, stray).map(([known, extra]) => ({ ...(extra ?? {}), ...known }));
}

const smallText = fc.string({ maxLength: 40 });
const tokenId = fc.oneof({ arbitrary: fc.nat({ max: 300 }), weight: 4 }, { arbitrary: fc.integer({ min: -5, max: 1_000_000 }), weight: 1 });
const stop = fc.oneof(smallText, fc.array(smallText, { maxLength: 5 }));

const responseFormat = fc.oneof(
  fc.constant({ type: 'text' }),
  fc.constant({ type: 'json_object' }),
  fc.record({ type: fc.constant('json_schema'), json_schema: fc.record({ name: fc.constant('x'), schema: fc.constantFrom({ type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] }, { type: 'string', maxLength: 5 }, { enum: ['yes', 'no'] }) }) }),
  fc.record({ type: fc.constant('regex'), regex: fc.constantFrom('[a-z]{1,6}', '(yes|no)', '\\d+', '(') }),
  fc.record({ type: fc.constant('grammar'), grammar: fc.constantFrom('root ::= "a" | "b"', 'root ::= root "x"', 'root ::= [0-9]+') }),
);

const sampling: Fields = {
  max_tokens: fc.oneof(fc.integer({ min: 1, max: 24 }), fc.integer({ min: -2, max: 200 })),
  temperature: fc.double({ min: 0, max: 2, noNaN: true }),
  top_p: fc.double({ min: 0, max: 1, noNaN: true }),
  top_k: fc.integer({ min: -1, max: 50 }),
  min_p: fc.double({ min: 0, max: 1, noNaN: true }),
  seed: fc.integer({ min: 0, max: 2 ** 31 }),
  n: fc.integer({ min: 1, max: 3 }),
  stop,
  stream: fc.boolean(),
  stream_options: fc.record({ include_usage: fc.boolean() }),
  presence_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
  frequency_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
  repetition_penalty: fc.double({ min: 0.5, max: 2, noNaN: true }),
  logit_bias: fc.dictionary(fc.nat({ max: 400 }).map(String), fc.integer({ min: -100, max: 100 }), { maxKeys: 3 }),
  response_format: responseFormat,
  ignore_eos: fc.boolean(),
  user: smallText,
};

export function completionBody(model: string): fc.Arbitrary<Record<string, unknown>> {
  const prompt = fc.oneof(smallText, fc.array(smallText, { minLength: 1, maxLength: 3 }), fc.array(tokenId, { minLength: 1, maxLength: 20 }), fc.array(fc.array(tokenId, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 2 }));
  return body({ model: fc.constantFrom(model, 'other-model'), prompt, ...sampling, logprobs: fc.integer({ min: 0, max: 25 }), echo: fc.boolean(), best_of: fc.integer({ min: 1, max: 3 }) }, ['model', 'prompt']);
}

export function chatBody(model: string): fc.Arbitrary<Record<string, unknown>> {
  const message = fc.record({ role: fc.constantFrom('system', 'user', 'assistant', 'tool', 'robot'), content: fc.oneof(smallText, fc.constant(null), fc.array(fc.record({ type: fc.constant('text'), text: smallText }), { maxLength: 2 })) });
  const tool = fc.record({ type: fc.constant('function'), function: fc.record({ name: fc.constantFrom('lookup', 'add'), parameters: fc.constant({ type: 'object', properties: { q: { type: 'string' } } }) }) });
  return body(
    {
      model: fc.constantFrom(model, 'other-model'),
      messages: fc.array(message, { minLength: 1, maxLength: 4 }),
      ...sampling,
      max_completion_tokens: fc.integer({ min: 1, max: 24 }),
      logprobs: fc.boolean(),
      top_logprobs: fc.integer({ min: 0, max: 25 }),
      tools: fc.array(tool, { maxLength: 2 }),
      tool_choice: fc.constantFrom('auto', 'none', 'required', { type: 'function', function: { name: 'lookup' } }),
      parallel_tool_calls: fc.boolean(),
    },
    ['model', 'messages'],
  );
}

export function tokenizeBody(model: string): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(
    body({ model: fc.constant(model), prompt: smallText, add_special_tokens: fc.boolean(), return_token_strs: fc.boolean() }, ['prompt']),
    body({ model: fc.constant(model), messages: fc.array(fc.record({ role: fc.constantFrom('user', 'assistant'), content: smallText }), { minLength: 1, maxLength: 3 }) }, ['messages']),
  );
}

export function detokenizeBody(model: string): fc.Arbitrary<Record<string, unknown>> {
  return body({ model: fc.constant(model), tokens: fc.array(tokenId, { maxLength: 30 }) }, ['tokens']);
}

export function replicaSubmitBody(model: string): fc.Arbitrary<Record<string, unknown>> {
  const request = body(
    {
      promptIds: fc.array(tokenId, { minLength: 1, maxLength: 20 }),
      maxTokens: fc.oneof(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 2 ** 31 })),
      sampling: body({ temperature: fc.double({ min: 0, max: 2, noNaN: true }), seed: fc.integer({ min: 0, max: 2 ** 31 }), topK: fc.integer({ min: 0, max: 40 }) }),
      stop: fc.array(smallText, { maxLength: 3 }),
      ignoreEos: fc.boolean(),
      logprobs: fc.integer({ min: 0, max: 25 }),
      resumeIds: fc.array(tokenId, { maxLength: 10 }),
    },
    ['promptIds', 'maxTokens', 'sampling'],
  );
  return body({ model: fc.constant(model), request }, ['model', 'request']);
}

/** POST routes and the body arbitraries that fit them. */
export function schemaBodies(model: string): { path: string; body: fc.Arbitrary<Record<string, unknown>> }[] {
  return [
    { path: '/v1/completions', body: completionBody(model) },
    { path: '/v1/chat/completions', body: chatBody(model) },
    { path: '/tokenize', body: tokenizeBody(model) },
    { path: '/detokenize', body: detokenizeBody(model) },
    { path: REPLICA_SEQUENCES_PATH, body: replicaSubmitBody(model) },
  ];
}
