/**
 * Tool calling and the rest of OpenAI API completeness through the official
 * `openai` client against a real `tessera serve` process on a random-weight
 * model: calls always parse under tool_choice required or a named function,
 * template-format calls are read under auto (streamed too), unsupported
 * fields are 400s naming them, logit_bias keys are checked, responses carry
 * the served model name, and /tokenize and /detokenize round-trip.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { synthesize } from '../synth/synthesize.js';
import { checkJsonSchema, type SchemaValidator } from '../testing/json-schema-check.js';
import { startServeProcess, type ServeProcess } from '../testing/serve-process.js';

const MODEL = 'tools-test';
const KEY = 'k';
let dir: string;
let server: ServeProcess & { kill(signal: NodeJS.Signals): void };
let client: OpenAI;
let validate: SchemaValidator;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-tools-'));
  const path = join(dir, 'tiny-llama3.gguf');
  await synthesize({ preset: 'tiny-llama3', arch: 'llama', dtype: 'f32', out: path, format: 'gguf', seed: 8 });
  server = await startServeProcess(['--model', path, '--port', '0', '--served-model-name', MODEL, '--api-key', KEY, '--kv-cache-mib', '32']);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
  validate = checkJsonSchema;
});

after(async () => {
  server?.kill('SIGTERM');
  await server?.exited;
  rmSync(dir, { recursive: true, force: true });
});

const WEATHER = { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, unit: { enum: ['c', 'f'] } }, required: ['city', 'unit'], additionalProperties: false };
const ADD = { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 99 }, b: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['a', 'b'] };
const TOOLS: OpenAI.Chat.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: WEATHER } },
  { type: 'function', function: { name: 'add', description: 'Adds two numbers', parameters: ADD } },
];
const PARAMETERS: Record<string, unknown> = { get_weather: WEATHER, add: ADD };
const MESSAGES: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Oslo?' }];

function checkCalls(calls: { function: { name: string; arguments: string } }[] | undefined): void {
  assert.ok(calls && calls.length > 0, 'at least one call');
  for (const call of calls) {
    assert.ok(call.function.name in PARAMETERS, call.function.name);
    assert.deepEqual(validate(JSON.parse(call.function.arguments), PARAMETERS[call.function.name]), [], call.function.arguments);
  }
}

/** A stream's tool-call deltas put together as the client library does. */
async function collect(stream: AsyncIterable<OpenAI.Chat.ChatCompletionChunk>): Promise<{ content: string; calls: { id: string; function: { name: string; arguments: string } }[]; finish: string | null }> {
  let content = '';
  let finish: string | null = null;
  const calls: { id: string; function: { name: string; arguments: string } }[] = [];
  for await (const chunk of stream) {
    assert.equal(chunk.model, MODEL);
    const choice = chunk.choices[0];
    if (!choice) continue;
    content += choice.delta.content ?? '';
    for (const delta of choice.delta.tool_calls ?? []) {
      calls[delta.index] ??= { id: '', function: { name: '', arguments: '' } };
      calls[delta.index].id += delta.id ?? '';
      calls[delta.index].function.name += delta.function?.name ?? '';
      calls[delta.index].function.arguments += delta.function?.arguments ?? '';
    }
    finish = choice.finish_reason ?? finish;
  }
  return { content, calls, finish };
}

test('tool_choice required: every reply is a parsed call whose arguments validate, streamed or whole', async () => {
  // With parallel calls the list is open-ended, and a random model never closes it by itself: commas
  // (inside any token) are made unlikely and "]" likely, which the constraint still overrides where a comma is the only way on.
  const bias: Record<string, number> = Object.fromEntries((await idsContaining(',')).map((id) => [id, -100]));
  bias[(await tokenIds([']']))[0]] = 10;
  for (let seed = 0; seed < 8; seed++) {
    const parallel = seed % 2 === 0;
    const request = { model: MODEL, messages: MESSAGES, tools: TOOLS, tool_choice: 'required' as const, parallel_tool_calls: parallel, temperature: 1, seed, max_tokens: 600, ...(parallel ? { logit_bias: bias } : {}) };
    const whole = await client.chat.completions.create(request);
    assert.equal(whole.choices[0].finish_reason, 'tool_calls');
    assert.equal(whole.choices[0].message.content, null);
    const calls = whole.choices[0].message.tool_calls as OpenAI.Chat.ChatCompletionMessageFunctionToolCall[];
    checkCalls(calls);
    if (!parallel) assert.equal(calls.length, 1);
    const streamed = await collect(await client.chat.completions.create({ ...request, stream: true }));
    assert.equal(streamed.finish, 'tool_calls');
    assert.deepEqual(streamed.calls.map((call) => call.function), calls.map((call) => call.function));
  }
});

test('a named tool_choice gives a call to that function', async () => {
  const reply = await client.chat.completions.create({ model: MODEL, messages: MESSAGES, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'add' } }, temperature: 1, seed: 3, max_tokens: 300 });
  const calls = reply.choices[0].message.tool_calls as OpenAI.Chat.ChatCompletionMessageFunctionToolCall[];
  assert.equal(calls.length, 1);
  assert.equal(calls[0].function.name, 'add');
  checkCalls(calls);
  assert.match(calls[0].id, /^[A-Za-z0-9]{9}$/);
});

test('tool_choice auto reads a call written in the template format, and a conversation with calls and results renders', async () => {
  // A random model will not write a call by itself; a regex makes it write one in the Hermes format the prompt asks for.
  const regex = 'Checking\\.<tool_call>\\{"name": "get_weather", "arguments": \\{"city": "[a-z]{1,6}", "unit": "c"\\}\\}</tool_call>';
  const request = { model: MODEL, messages: MESSAGES, tools: TOOLS, temperature: 0, max_tokens: 200, response_format: { type: 'regex', regex } } as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
  const whole = await client.chat.completions.create(request);
  assert.equal(whole.choices[0].finish_reason, 'tool_calls');
  assert.equal(whole.choices[0].message.content, 'Checking.');
  const calls = whole.choices[0].message.tool_calls as OpenAI.Chat.ChatCompletionMessageFunctionToolCall[];
  checkCalls(calls);
  const streamed = await collect(await client.chat.completions.create({ ...request, stream: true } as unknown as OpenAI.Chat.ChatCompletionCreateParamsStreaming));
  assert.equal(streamed.content, 'Checking.');
  assert.deepEqual(streamed.calls.map((call) => call.function), calls.map((call) => call.function));
  const followUp = await client.chat.completions.create({
    model: MODEL,
    tools: TOOLS,
    max_tokens: 5,
    messages: [...MESSAGES, whole.choices[0].message, { role: 'tool', tool_call_id: calls[0].id, content: 'sunny, 21 C' }],
  });
  assert.equal(followUp.choices[0].message.role, 'assistant');
});

test('fields the server does not support are 400s naming them; documented ignored ones are accepted', async () => {
  const unsupported: [Record<string, unknown>, string][] = [
    [{ audio: { voice: 'alloy' } }, 'audio'],
    [{ functions: [] }, 'functions'],
    [{ guided_json: {} }, 'guided_json'],
    [{ stream_options: { include_usage: true, bogus: 1 } }, 'stream_options.bogus'],
    [{ messages: [{ role: 'user', content: 'x', weight: 2 }] }, 'messages[0].weight'],
  ];
  for (const [extra, param] of unsupported) {
    const error = await client.chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 2, ...extra } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming).then(() => undefined, (caught: unknown) => caught);
    assert.ok(error instanceof OpenAI.BadRequestError, `${param}: ${String(error)}`);
    assert.equal(error.param, param);
    assert.equal(error.code, 'unsupported_field');
  }
  const suffix = await client.completions.create({ model: MODEL, prompt: 'x', suffix: 'y', max_tokens: 2 }).then(() => undefined, (caught: unknown) => caught);
  assert.ok(suffix instanceof OpenAI.BadRequestError && suffix.param === 'suffix');
  const ignored = await client.chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 2, store: true, metadata: { run: '1' }, service_tier: 'auto', user: 'u' });
  assert.equal(ignored.choices.length, 1);
});

test('logit_bias keys must be token ids in the vocabulary, and biases within [-100, 100]', async () => {
  for (const [bias, pattern] of [[{ abc: 1 }, /keys must be token ids/], [{ 999999: 1 }, /outside the vocabulary/], [{ 5: 200 }, /\[-100, 100\]/]] as const) {
    const error = await client.chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 2, logit_bias: bias as Record<string, number> }).then(() => undefined, (caught: unknown) => caught);
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.equal(error.param, 'logit_bias');
    assert.match(error.message, pattern);
  }
});

test('every response carries the served model name, whole and streamed', async () => {
  assert.equal((await client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 2 })).model, MODEL);
  assert.equal((await client.chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 2 })).model, MODEL);
  await collect(await client.chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 2, stream: true }));
  assert.deepEqual((await client.models.list()).data.map((model) => model.id), [MODEL]);
});

test('/tokenize and /detokenize round-trip text and chats, under the API key', async () => {
  const post = (path: string, body: unknown, key = KEY): Promise<Response> =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
  const tokenized = (await (await post('/tokenize', { model: MODEL, prompt: 'Hello there', return_token_strs: true })).json()) as { count: number; tokens: number[]; token_strs: string[]; max_model_len: number };
  assert.equal(tokenized.count, tokenized.tokens.length);
  assert.equal(tokenized.token_strs.length, tokenized.count);
  assert.ok(tokenized.max_model_len > 0);
  const detokenized = (await (await post('/detokenize', { tokens: tokenized.tokens })).json()) as { prompt: string };
  assert.equal(detokenized.prompt, 'Hello there');
  const chat = (await (await post('/tokenize', { messages: MESSAGES })).json()) as { tokens: number[] };
  const reply = await client.chat.completions.create({ model: MODEL, messages: MESSAGES, max_tokens: 1 });
  assert.equal(chat.tokens.length, reply.usage?.prompt_tokens);
  assert.equal((await post('/tokenize', { prompt: 'x' }, 'wrong')).status, 401);
  assert.equal((await post('/detokenize', { tokens: [-1] })).status, 400);
});

async function tokenIds(texts: string[]): Promise<number[]> {
  return Promise.all(
    texts.map(async (text) => {
      const response = await fetch(`${server.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify({ prompt: text, add_special_tokens: false }) });
      const body = (await response.json()) as { tokens: number[] };
      assert.equal(body.tokens.length, 1, `${text} is one token`);
      return body.tokens[0];
    }),
  );
}

/** Every token id whose text contains `text`, found through /detokenize. */
async function idsContaining(text: string): Promise<number[]> {
  const vocabulary = await Promise.all(
    Array.from({ length: 1024 }, async (_, id) => {
      const response = await fetch(`${server.url}/detokenize`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify({ tokens: [id] }) });
      return ((await response.json()) as { prompt: string }).prompt;
    }),
  );
  return vocabulary.flatMap((piece, id) => (piece.includes(text) ? [id] : []));
}
