/**
 * Structured outputs through the official `openai` client against a real
 * `tessera serve` process on a random-weight model: whatever the weights,
 * every reply parses and validates, batching changes nothing, and streams
 * reassemble to the whole reply.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { synthesize } from '../synth/synthesize.js';
import { checkJsonSchema, type SchemaValidator } from '../testing/json-schema-check.js';
import { sampleSchemas } from '../testing/sample-schemas.js';
import { startServeProcess, type ServeProcess } from '../testing/serve-process.js';

const MODEL = 'structured-test';
let dir: string;
let server: ServeProcess & { kill(signal: NodeJS.Signals): void };
let client: OpenAI;
let validate: SchemaValidator;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-structured-'));
  const path = join(dir, 'tiny-llama3.gguf');
  await synthesize({ preset: 'tiny-llama3', arch: 'llama', dtype: 'f32', out: path, format: 'gguf', seed: 21 });
  server = await startServeProcess(['--model', path, '--port', '0', '--served-model-name', MODEL, '--kv-cache-mib', '64', '--max-num-seqs', '64', '--max-batch-tokens', '2048']);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
  validate = checkJsonSchema;
});

after(async () => {
  server?.kill('SIGTERM');
  await server?.exited;
  rmSync(dir, { recursive: true, force: true });
});

type Params = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;

function schemaRequest(schema: Record<string, unknown>, index: number): Params {
  return {
    model: MODEL,
    messages: [{ role: 'user', content: `Describe item ${index} as JSON.` }],
    max_tokens: 1500,
    temperature: 1,
    seed: 1000 + index,
    response_format: { type: 'json_schema', json_schema: { name: `schema_${index}`, schema, strict: true } },
  };
}

function content(completion: OpenAI.Chat.ChatCompletion): string {
  return completion.choices[0].message.content ?? '';
}

test('50 requests with assorted JSON schemas, sent at once, all return JSON that validates', async () => {
  const schemas = sampleSchemas();
  const replies = await Promise.all(schemas.map((schema, i) => client.chat.completions.create(schemaRequest(schema, i))));
  replies.forEach((reply, i) => {
    assert.equal(reply.model, MODEL);
    assert.equal(reply.choices[0].finish_reason, 'stop', `schema ${i}: ${content(reply)}`);
    assert.deepEqual(validate(JSON.parse(content(reply)), schemas[i]), [], `schema ${i} ${JSON.stringify(schemas[i])}\n${content(reply)}`);
  });
  // The same request alone gives the same reply as in the batch of fifty.
  for (const i of [0, 17, 33, 49]) {
    const alone = await client.chat.completions.create(schemaRequest(schemas[i], i));
    assert.equal(content(alone), content(replies[i]), `schema ${i} alone`);
  }
});

test('a streamed constrained reply reassembles to the whole reply', async () => {
  const schema = sampleSchemas()[9];
  const whole = await client.chat.completions.create(schemaRequest(schema, 9));
  const stream = await client.chat.completions.create({ ...schemaRequest(schema, 9), stream: true });
  let text = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, content(whole));
  assert.equal(finish, 'stop');
});

test('regex and GBNF grammar replies match, greedy and sampled, on completions and chat', async () => {
  const regex = '(yes|no): [a-z]{2,8}( [0-9]{1,3})?\\.';
  const grammar = 'root ::= "[" item ("," item){0,3} "]"\nitem ::= [0-9] | "\\"" [a-c]{1,4} "\\""';
  for (const temperature of [0, 1]) {
    const completion = await client.completions.create({ model: MODEL, prompt: 'Answer: ', max_tokens: 64, temperature, seed: 4, response_format: { type: 'regex', regex } } as OpenAI.Completions.CompletionCreateParamsNonStreaming);
    assert.match(completion.choices[0].text, /^(yes|no): [a-z]{2,8}( [0-9]{1,3})?\.$/);
    assert.equal(completion.model, MODEL);
    const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'A list:' }], max_tokens: 64, temperature, seed: 5, response_format: { type: 'grammar', grammar } } as unknown as Params);
    assert.match(content(chat), /^\[([0-9]|"[a-c]{1,4}")(,([0-9]|"[a-c]{1,4}")){0,3}\]$/);
  }
});

test('json_object: the reply parses as a JSON object (logit_bias toward closing, so a random model ends)', async () => {
  const ids = await tokenIds(['}', '"']);
  const reply = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 400, temperature: 0, response_format: { type: 'json_object' }, logit_bias: { [ids[0]]: 30, [ids[1]]: 15 } });
  assert.equal(reply.choices[0].finish_reason, 'stop');
  const value: unknown = JSON.parse(content(reply));
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value));
});

test('a bad schema, pattern or grammar is a 400 that says what is wrong', async () => {
  const bad = async (format: unknown, pattern: RegExp): Promise<void> => {
    const error = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], response_format: format } as Params).then(
      () => assert.fail('expected a 400'),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.match(error.message, pattern);
  };
  await bad({ type: 'json_schema', json_schema: { name: 'x', schema: { type: 'integer', multipleOf: 2 } } }, /multipleOf.*not supported/);
  await bad({ type: 'regex', regex: '(a)\\1' }, /backreferences/);
  await bad({ type: 'grammar', grammar: 'root ::= root "x" | "y"' }, /left-recursive/);
  await bad({ type: 'xml' }, /response_format.type must be one of/);
});

async function tokenIds(texts: string[]): Promise<number[]> {
  return Promise.all(
    texts.map(async (text) => {
      const response = await fetch(`${server.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: text, add_special_tokens: false }) });
      const body = (await response.json()) as { tokens: number[] };
      assert.equal(body.tokens.length, 1, `${text} is one token`);
      return body.tokens[0];
    }),
  );
}
