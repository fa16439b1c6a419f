/**
 * Acceptance tests of `tessera serve` through the official `openai` client,
 * against a real server (HTTP, engine worker thread) on a synthetic model.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { synthesize } from '../synth/synthesize.js';
import { fixture } from '../testing/fixtures.js';
import { launchServer } from './launch.js';
import type { TesseraServer } from './server.js';

// The WebGPU backend's test runs this file again with TESSERA_TEST_SERVE_BACKEND=webgpu (src/backend/webgpu/webgpu-serve.test.ts).
const BACKEND = process.env.TESSERA_TEST_SERVE_BACKEND === 'webgpu' ? 'webgpu' : 'reference';
const KEY = 'test-key';
const MODEL = 'tiny-test';
let dir: string;
let modelPath: string;
let server: TesseraServer;
let client: OpenAI;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-serve-'));
  modelPath = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: modelPath, format: 'gguf', seed: 3 });
  server = await launchServer({ model: modelPath, backend: BACKEND, port: 0, apiKey: KEY, servedModelName: MODEL, maxBodyBytes: 64 * 1024, core: { kvCacheMib: 8, maxNumSeqs: 64, maxBatchTokens: 128 } });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Extra fields the openai types do not know about (ignore_eos). */
type Extra = Record<string, unknown>;

async function complete(prompt: string | number[], extra: Extra = {}): Promise<OpenAI.Completions.Completion> {
  return client.completions.create({ model: MODEL, prompt, max_tokens: 24, temperature: 0, ...extra } as OpenAI.Completions.CompletionCreateParamsNonStreaming);
}

test('GET /v1/models lists the served model', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((model) => model.id), [MODEL]);
});

test('completions: streamed text equals the whole response, with usage', async () => {
  const whole = await complete('The quick brown fox', { ignore_eos: true });
  assert.equal(whole.object, 'text_completion');
  assert.equal(whole.choices[0].finish_reason, 'length');
  assert.equal(whole.usage?.completion_tokens, 24);
  assert.ok(whole.choices[0].text.length > 0);
  const stream = await client.completions.create({ model: MODEL, prompt: 'The quick brown fox', max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true }, ignore_eos: true } as OpenAI.Completions.CompletionCreateParamsStreaming);
  let text = '';
  let finish: string | null = null;
  let usage: OpenAI.Completions.CompletionUsage | undefined | null;
  for await (const chunk of stream) {
    if (chunk.choices.length > 0) {
      text += chunk.choices[0].text;
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, whole.choices[0].text);
  assert.equal(finish, 'length');
  assert.deepEqual(usage, whole.usage);
});

test('chat: the template is applied; streamed deltas equal the whole message', async () => {
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Say something.' },
  ];
  const whole = await client.chat.completions.create({ model: MODEL, messages, max_completion_tokens: 20, temperature: 0 });
  assert.equal(whole.object, 'chat.completion');
  assert.equal(whole.choices[0].message.role, 'assistant');
  assert.ok((whole.usage?.prompt_tokens ?? 0) > 10, 'the template adds role markers around the messages');
  const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 20, temperature: 0, stream: true });
  let content = '';
  let role: string | undefined;
  for await (const chunk of stream) {
    role ??= chunk.choices[0]?.delta.role;
    content += chunk.choices[0]?.delta.content ?? '';
  }
  assert.equal(role, 'assistant');
  assert.equal(content, whole.choices[0].message.content);
});

test('n > 1 with a seed: distinct choices that repeat exactly (stories260K)', async (t) => {
  // A trained model: the synthetic one's planted logit margins leave sampling nothing to choose.
  const stories = fixture(t, 'stories260K.bin');
  if (!stories) return;
  const storyServer = await launchServer({ model: stories, backend: BACKEND, port: 0, servedModelName: 'stories', core: { kvCacheMib: 4 } });
  try {
    const storyClient = new OpenAI({ baseURL: `${storyServer.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const ask = (seed: number, n: number): Promise<OpenAI.Completions.Completion> =>
      storyClient.completions.create({ model: 'stories', prompt: 'Once upon a time', n, seed, temperature: 1, max_tokens: 24, ignore_eos: true } as OpenAI.Completions.CompletionCreateParamsNonStreaming);
    const first = await ask(1234, 3);
    const second = await ask(1234, 3);
    assert.equal(first.choices.length, 3);
    assert.deepEqual(first.choices.map((choice) => choice.index), [0, 1, 2]);
    assert.deepEqual(first.choices.map((choice) => choice.text), second.choices.map((choice) => choice.text));
    assert.ok(new Set(first.choices.map((choice) => choice.text)).size > 1, 'choices draw from different streams');
    assert.equal(first.usage?.completion_tokens, 72);
    const other = await ask(99, 1);
    assert.notEqual(other.choices[0].text, first.choices[0].text);
    // Choice i of seed s draws from seed s + i: choice 1 of 1234 is choice 0 of 1235.
    assert.equal((await ask(1235, 1)).choices[0].text, first.choices[1].text);
  } finally {
    await storyServer.close();
  }
});

test('stop strings end the text before the stop, with finish_reason stop', async () => {
  const free = await complete('In the morning', { max_tokens: 40, ignore_eos: true });
  const text = free.choices[0].text;
  const stop = text.slice(10, 13);
  assert.equal(stop.length, 3, `enough text to cut: ${JSON.stringify(text)}`);
  const stopped = await complete('In the morning', { max_tokens: 40, ignore_eos: true, stop: ['\u0000never', stop] });
  assert.equal(stopped.choices[0].finish_reason, 'stop');
  assert.equal(stopped.choices[0].text, text.slice(0, text.indexOf(stop)));
});

test('logprobs: completions (top 3) and chat (top 2)', async () => {
  const result = await complete('Hello', { max_tokens: 8, logprobs: 3, ignore_eos: true });
  const logprobs = result.choices[0].logprobs!;
  assert.equal(logprobs.tokens?.length, 8);
  assert.equal(logprobs.tokens?.join(''), result.choices[0].text.length > 0 ? logprobs.tokens?.join('') : '');
  for (let i = 0; i < 8; i++) {
    const top = Object.values(logprobs.top_logprobs![i]);
    assert.ok(top.length >= 1 && top.length <= 3);
    // Greedy: the chosen token is the most likely one.
    assert.equal(logprobs.token_logprobs![i], Math.max(...top));
    assert.ok(logprobs.token_logprobs![i] <= 0);
  }
  const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 2 });
  const content = chat.choices[0].logprobs!.content!;
  assert.equal(content.length, chat.usage?.completion_tokens);
  for (const entry of content) {
    assert.equal(entry.top_logprobs.length, 2);
    assert.equal(entry.logprob, entry.top_logprobs[0].logprob);
  }
});

test('32 concurrent greedy requests of mixed lengths each equal the request served alone', async () => {
  const requests = Array.from({ length: 32 }, (_, i) => ({
    prompt: Array.from({ length: 1 + ((i * 11) % 60) }, (_, j) => 3 + ((i * 31 + j * 7) % 500)),
    max_tokens: 4 + ((i * 5) % 29),
  }));
  const alone: string[] = [];
  for (const request of requests) alone.push((await complete(request.prompt, { max_tokens: request.max_tokens, ignore_eos: true })).choices[0].text);
  // Bad requests mixed in are refused on their own and disturb nobody.
  const refused = [{ top_k: 'many' }, { max_tokens: 10_000 }, { model: 'other' }].map((fields) => complete('x', fields).then(() => 'accepted', () => 'refused'));
  const together = await Promise.all(requests.map((request) => complete(request.prompt, { max_tokens: request.max_tokens, ignore_eos: true })));
  assert.deepEqual(await Promise.all(refused), ['refused', 'refused', 'refused']);
  together.forEach((result, i) => {
    assert.equal(result.choices[0].text, alone[i], `request ${i}`);
    assert.equal(result.usage?.completion_tokens, requests[i].max_tokens);
  });
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const maxBatch = metrics.match(/tessera_batch_size_bucket\{le="1"\} (\d+)/);
  const count = metrics.match(/tessera_batch_size_count (\d+)/);
  assert.ok(maxBatch && count && Number(count[1]) > Number(maxBatch[1]), 'some steps ran more than one sequence');
});

test('a repeated prompt hits the prefix cache and gives the same tokens', async () => {
  const prompt = Array.from({ length: 70 }, (_, i) => 5 + ((i * 13) % 400));
  const first = await complete(prompt, { max_tokens: 6, ignore_eos: true });
  const second = await complete(prompt, { max_tokens: 6, ignore_eos: true });
  assert.equal(second.choices[0].text, first.choices[0].text);
  assert.equal((second.usage as { prompt_tokens_details?: { cached_tokens: number } }).prompt_tokens_details?.cached_tokens, 64);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const rate = Number(metrics.match(/^tessera_prefix_cache_hit_rate (\S+)$/m)?.[1]);
  assert.ok(rate > 0, `hit rate ${rate}`);
});

test('errors: 401, 404, 400 (types, ranges, JSON, context), 413, in the OpenAI shape', async () => {
  await assert.rejects(new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'wrong', maxRetries: 0 }).models.list(), OpenAI.AuthenticationError);
  await assert.rejects(complete('x', { model: 'no-such-model' }), (error: unknown) => error instanceof OpenAI.NotFoundError && error.code === 'model_not_found');
  const badRequests: Extra[] = [
    { temperature: 'hot' },
    { top_p: 5 },
    { n: 0 },
    { max_tokens: -3 },
    { stop: [1, 2] },
    { max_tokens: 600 },
    { prompt: Array.from({ length: 600 }, () => 5) },
    { prompt: [1, 99999] },
    { logprobs: 50 },
    { prompt: Array.from({ length: 21 }, () => 'a'), n: 16 },
  ];
  for (const fields of badRequests) {
    await assert.rejects(complete('x', fields), (error: unknown) => error instanceof OpenAI.BadRequestError && typeof error.message === 'string', JSON.stringify(fields).slice(0, 60));
  }
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [] }), OpenAI.BadRequestError);
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'wizard', content: 'x' }] } as never), OpenAI.BadRequestError);
  const raw = (body: string): Promise<Response> => fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body });
  const malformed = await raw('{"model": ');
  assert.equal(malformed.status, 400);
  const shape = (await malformed.json()) as { error: Record<string, unknown> };
  assert.deepEqual(Object.keys(shape.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(shape.error.code, 'invalid_json');
  const huge = await raw(JSON.stringify({ model: MODEL, prompt: 'a'.repeat(100 * 1024) }));
  assert.equal(huge.status, 413);
  const noKey = await fetch(`${server.url}/v1/models`);
  assert.equal(noKey.status, 401);
  // The server is unharmed.
  assert.equal((await complete('still here', { max_tokens: 2 })).choices.length, 1);
});

test('a client that disconnects mid-stream frees its blocks; health and readiness answer', async () => {
  const controller = new AbortController();
  const stream = await client.completions.create(
    { model: MODEL, prompt: 'Tell a long story', max_tokens: 400, temperature: 0, stream: true, ignore_eos: true } as OpenAI.Completions.CompletionCreateParamsStreaming,
    { signal: controller.signal },
  );
  let chunks = 0;
  // The client ends the iteration quietly on abort.
  for await (const _ of stream) {
    if (++chunks === 3) {
      controller.abort();
      break;
    }
  }
  // Wait for the server to see the disconnect and the engine to report the blocks free.
  for (let attempt = 0; ; attempt++) {
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const cancelled = /^tessera_requests_cancelled_total 1$/m.test(metrics);
    if (cancelled && /^tessera_running_sequences 0$/m.test(metrics) && /^tessera_kv_blocks_used 0$/m.test(metrics)) break;
    assert.ok(attempt < 500, `the cancelled sequence is still held:\n${metrics}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
  assert.equal((await fetch(`${server.url}/ready`)).status, 200);
});

test('a full queue answers 429 with Retry-After', async () => {
  const small = await launchServer({ model: modelPath, backend: BACKEND, port: 0, core: { kvCacheMib: 2, maxNumSeqs: 1 }, maxWaiting: 0 });
  try {
    const body = (maxTokens: number): string => JSON.stringify({ model: modelPath, prompt: 'busy', max_tokens: maxTokens, ignore_eos: true, stream: true });
    const busy = await fetch(`${small.url}/v1/completions`, { method: 'POST', body: body(300) });
    const reader = busy.body!.getReader();
    await reader.read(); // the first sequence is admitted and streaming
    const refused = await fetch(`${small.url}/v1/completions`, { method: 'POST', body: body(1) });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'server_busy');
    await reader.cancel();
  } finally {
    await small.close();
  }
});
