/**
 * `tessera router` over replicas in this process: the EngineHost suite on
 * the routed host, and the router's OpenAI responses equal a replica's byte
 * for byte (ids, timestamps and cached-token counts aside), streamed or not.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { runEngineHostSuite } from '../serve/engine-host.case.js';
import { launchServer } from '../serve/launch.js';
import type { TesseraServer } from '../serve/server.js';
import { fixture, SHARED_MODELS } from '../testing/fixtures.js';
import { requestMix, sendMixed } from '../testing/request-mix.js';
import { launchRouter, type Router } from './launch-router.js';
import { join } from 'node:path';
import { existsSync } from 'node:fs';

const REPLICA_KEY = 'replica-secret';
const CLIENT_KEY = 'client-key';

async function replicas(model: string, count: number): Promise<TesseraServer[]> {
  return Promise.all(Array.from({ length: count }, () => launchServer({ model, backend: 'reference', port: 0, apiKey: REPLICA_KEY, servedModelName: 'stories', core: { kvCacheMib: 4, maxNumSeqs: 16, maxBatchTokens: 128 } })));
}

runEngineHostSuite('router over two replicas', async (model) => {
  const servers = await replicas(model, 2);
  const router = await launchRouter({ model, port: 0, replicas: servers.map((server) => server.url), replicaApiKey: REPLICA_KEY, pollMs: 100 });
  return {
    host: router.server.servingModel!.host,
    close: async () => {
      await router.server.close();
      await Promise.all(servers.map((server) => server.close()));
    },
  };
});

let servers: TesseraServer[] = [];
let router: Router | undefined;

before(async () => {
  const model = join(SHARED_MODELS, 'stories260K.bin');
  if (!existsSync(model)) return;
  servers = await replicas(model, 2);
  router = await launchRouter({ model, port: 0, apiKey: CLIENT_KEY, replicas: servers.map((server) => server.url), replicaApiKey: REPLICA_KEY, pollMs: 100 });
});

after(async () => {
  await router?.server.close();
  await Promise.all(servers.map((server) => server.close()));
});

test("the router's responses equal a replica's byte for byte: completions, chat, streams, n = 2, stops, penalties, logprobs", async (t) => {
  if (!fixture(t, 'stories260K.bin') || !router) return;
  const viaRouter = new OpenAI({ baseURL: `${router.server.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
  const direct = new OpenAI({ baseURL: `${servers[0].url}/v1`, apiKey: REPLICA_KEY, maxRetries: 0 });
  const requests = requestMix('stories', 12, 40);
  const routed = await Promise.all(requests.map((request) => sendMixed(viaRouter, request)));
  for (let i = 0; i < requests.length; i++) {
    const expected = await sendMixed(direct, requests[i]);
    assert.equal(routed[i].status, 200);
    assert.equal(routed[i].body, expected.body, `request ${i}: ${JSON.stringify(requests[i].body)}`);
  }
});

test("the router takes the client's key, never forwards it, and answers errors as serve does", async (t) => {
  if (!fixture(t, 'stories260K.bin') || !router) return;
  const wrongKey = await fetch(`${router.server.url}/v1/models`, { headers: { authorization: `Bearer ${REPLICA_KEY}` } });
  assert.equal(wrongKey.status, 401);
  const models = (await (await fetch(`${router.server.url}/v1/models`, { headers: { authorization: `Bearer ${CLIENT_KEY}` } })).json()) as { data: { id: string }[] };
  assert.deepEqual(models.data.map((model) => model.id), ['stories']);
  const bad = await fetch(`${router.server.url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${CLIENT_KEY}` }, body: JSON.stringify({ model: 'stories', prompt: 'x', max_tokens: 9999 }) });
  const direct = await fetch(`${servers[0].url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${REPLICA_KEY}` }, body: JSON.stringify({ model: 'stories', prompt: 'x', max_tokens: 9999 }) });
  assert.equal(bad.status, 400);
  assert.equal(await bad.text(), await direct.text());
  const metrics = await (await fetch(`${router.server.url}/metrics`)).text();
  assert.match(metrics, /tessera_router_sequences_total\{replica="http:\/\/127\.0\.0\.1:\d+",reason="[a-z-]+"\} \d+/);
  assert.match(metrics, /tessera_router_decision_seconds_count \d+/);
});

test('past --max-migrations a request ends with an OpenAI-shaped 503 TESSERA_ERR_REPLICA_UNAVAILABLE', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const own = await replicas(model, 2);
  const strict = await launchRouter({ model, port: 0, replicas: own.map((server) => server.url), replicaApiKey: REPLICA_KEY, pollMs: 100, maxMigrations: 0, waitForReplicaMs: 500 });
  try {
    const post = (body: object): Promise<Response> => fetch(`${strict.server.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: 'stories', prompt: 'Once', ...body }) });
    const response = await post({ max_tokens: 500, ignore_eos: true, stream: true });
    const reader = response.body!.getReader();
    await reader.read(); // the first token has been delivered: a failure now is a migration
    await Promise.all(own.map((server) => server.close()));
    let text = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += new TextDecoder().decode(chunk.value);
    const events = text.split('\n\n').filter((event) => event.length > 0);
    assert.equal(events.at(-1), 'data: [DONE]');
    const { error } = JSON.parse(events.at(-2)!.slice('data: '.length)) as { error: { code: string; type: string; message: string } };
    assert.deepEqual([error.code, error.type], ['TESSERA_ERR_REPLICA_UNAVAILABLE', 'service_unavailable']);
    assert.match(error.message, /--max-migrations/);
    const refused = await post({ max_tokens: 4 });
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'TESSERA_ERR_REPLICA_UNAVAILABLE');
  } finally {
    await strict.server.close();
  }
});
