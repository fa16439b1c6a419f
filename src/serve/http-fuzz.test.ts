/**
 * Property-based HTTP fuzzing of every route of a live server (fast-check):
 * schema-derived bodies for each POST route, random methods, paths,
 * headers and bodies, bodies trickled in or cut short, clients that hang up
 * as soon as a stream starts; several at once, so the queue fills. Every
 * answer must be below 500 (503 aside: capacity), with OpenAI's error shape
 * when it is an error; the server must answer /health after every batch;
 * and once the dust settles no KV block may still be held. Fixed seed and
 * case count (TESSERA_FUZZ_SEED / TESSERA_FUZZ_SCALE to vary), reported.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { synthesize } from '../synth/synthesize.js';
import { fuzzSettings, Tally } from '../testing/byte-mutation.js';
import { sendFuzzRequest, type Delivery, type FuzzRequest, type FuzzResponse } from '../testing/fuzz-http-client.js';
import { schemaBodies } from '../testing/openai-arbitraries.js';
import { launchServer } from './launch.js';
import { REPLICA_LOAD_PATH } from './replica-protocol.js';
import type { TesseraServer } from './server.js';

const KEY = 'fuzz-key';
const MODEL = 'fuzz-model';
const MAX_BODY = 16 * 1024;
const GET_PATHS = ['/health', '/ready', '/metrics', '/v1/models', `/v1/models/${MODEL}`, '/v1/models/nope', '/dashboard', '/dashboard/state', '/dashboard/app.js', REPLICA_LOAD_PATH];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];

interface FuzzCase {
  readonly kind: string;
  readonly request: FuzzRequest;
}

const delivery: fc.Arbitrary<Delivery> = fc.oneof({ arbitrary: fc.constant('whole' as const), weight: 4 }, fc.constant('slow' as const), fc.constant('partial' as const), fc.constant('disconnect' as const));
const authorization = fc.oneof({ arbitrary: fc.constant(`Bearer ${KEY}`), weight: 8 }, fc.constant(undefined), fc.stringMatching(/^[0-9a-f]{0,20}$/).map((text) => `Bearer ${text}`), fc.constant('Basic Zm9vOmJhcg=='));
const contentType = fc.oneof({ arbitrary: fc.constant('application/json'), weight: 6 }, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1'));
const headerName = fc.stringMatching(/^x-[a-z0-9-]{1,12}$/);
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,40}$/).map((text) => text.trim());

function headers(auth: string | undefined, type: string, extra: Record<string, string>): Record<string, string> {
  return { ...extra, 'content-type': type, ...(auth === undefined ? {} : { authorization: auth }) };
}

const extraHeaders = fc.dictionary(headerName, headerValue, { maxKeys: 3 });

function schemaCase(): fc.Arbitrary<FuzzCase> {
  return fc.oneof(...schemaBodies(MODEL).map(({ path, body }) =>
    fc.record({ body, auth: authorization, type: contentType, extra: extraHeaders, delivery }).map(({ body: value, auth, type, extra, delivery: how }) => ({
      kind: `schema ${path}`,
      request: { method: 'POST', path, headers: headers(auth, type, extra), body: Buffer.from(JSON.stringify(value)), delivery: how },
    })),
  ));
}

const randomBody = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((value) => Buffer.from(JSON.stringify(value) ?? 'null')),
  fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)),
  fc.constant(Buffer.alloc(0)),
  fc.constant(Buffer.alloc(MAX_BODY + 1, 0x20)),
);
const randomPath = fc.oneof(fc.constantFrom(...GET_PATHS, '/v1/completions', '/v1/chat/completions', '/tokenize', '/detokenize'), fc.webPath(), fc.webPath().map((path) => `/v1${path}`));

function randomCase(): fc.Arbitrary<FuzzCase> {
  return fc.record({ method: fc.constantFrom(...METHODS), path: randomPath, query: fc.option(fc.webQueryParameters(), { nil: undefined }), body: randomBody, auth: authorization, type: contentType, extra: extraHeaders, delivery }).map((value) => ({
    kind: 'random',
    request: { method: value.method, path: `${value.path || '/'}${value.query ? `?${value.query}` : ''}`, headers: headers(value.auth, value.type, value.extra), body: value.method === 'GET' || value.method === 'HEAD' ? Buffer.alloc(0) : value.body, delivery: value.delivery },
  }));
}

function getCase(): fc.Arbitrary<FuzzCase> {
  return fc.record({ path: fc.constantFrom(...GET_PATHS), auth: authorization, extra: extraHeaders }).map(({ path, auth, extra }) => ({
    kind: `get ${path}`,
    request: { method: 'GET', path, headers: headers(auth, 'application/json', extra), body: Buffer.alloc(0), delivery: 'whole' },
  }));
}

/** What must hold of one answer; undefined when it does. */
function problemOf(fuzz: FuzzCase, response: FuzzResponse): string | undefined {
  const what = `${fuzz.request.method} ${fuzz.request.path} (${fuzz.kind}, ${fuzz.request.delivery})`;
  if (response.status === undefined) return undefined;
  if (response.status >= 500 && response.status !== 503) return `${what}: ${response.status} ${response.body.slice(0, 300)}`;
  const json = response.contentType?.startsWith('application/json') && fuzz.request.method !== 'HEAD' && response.outcome === 'answered';
  if (response.status >= 400 && json) {
    const parsed = JSON.parse(response.body) as { error?: { message?: unknown; type?: unknown; code?: unknown } };
    if (typeof parsed.error?.message !== 'string' || typeof parsed.error.type !== 'string') return `${what}: ${response.status} without OpenAI's error shape: ${response.body.slice(0, 200)}`;
  }
  return undefined;
}

function errorCode(response: FuzzResponse): string {
  if (response.status === undefined || response.status < 400 || response.body === '' || !response.contentType?.startsWith('application/json') || response.outcome !== 'answered') return 'none';
  try {
    return String((JSON.parse(response.body) as { error?: { code?: unknown } }).error?.code);
  } catch {
    return 'unparsed';
  }
}

async function settled(server: TesseraServer): Promise<{ blocksUsed: number; active: number }> {
  const host = server.servingModel!.host;
  // One short request after the storm: its step reports the pool as it is now.
  await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'x', max_tokens: 1 }) });
  const deadline = Date.now() + 30_000;
  while ((host.activeSequences > 0 || host.stats().blocksUsed > 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return { blocksUsed: host.stats().blocksUsed, active: host.activeSequences };
}

test('HTTP fuzzing of every route: no 5xx but 503, errors in OpenAI shape, the server stays up, no KV block leaks', { timeout: 600_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-http-fuzz-'));
  const modelPath = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: modelPath, format: 'gguf', seed: 3 });
  const server = await launchServer({ model: modelPath, backend: 'reference', port: 0, apiKey: KEY, servedModelName: MODEL, maxBodyBytes: MAX_BODY, maxWaiting: 4, core: { kvCacheMib: 1, maxNumSeqs: 4, maxBatchTokens: 64, maxModelLen: 96 } });
  const port = Number(new URL(server.url).port);
  const kinds = new Tally();
  const statuses = new Tally();
  const deliveries = new Tally();
  const codes = new Tally();
  const settings = fuzzSettings(300);
  const started = Date.now();
  try {
    const oneCase = fc.oneof({ arbitrary: schemaCase(), weight: 6 }, { arbitrary: randomCase(), weight: 2 }, { arbitrary: getCase(), weight: 1 });
    await fc.assert(
      fc.asyncProperty(fc.array(oneCase, { minLength: 1, maxLength: 4 }), async (cases) => {
        const answers = await Promise.all(cases.map((fuzz) => sendFuzzRequest(port, fuzz.request, 60_000)));
        cases.forEach((fuzz, i) => {
          kinds.add(fuzz.kind);
          deliveries.add(fuzz.request.delivery);
          statuses.add(answers[i]!.status === undefined ? answers[i]!.outcome : String(answers[i]!.status));
          codes.add(errorCode(answers[i]!));
          const problem = problemOf(fuzz, answers[i]!);
          if (problem !== undefined) assert.fail(problem);
        });
        const health = await fetch(`${server.url}/health`);
        assert.equal(health.status, 200, 'the server answers /health after every batch');
      }),
      settings,
    );
    const after = await settled(server);
    t.diagnostic(`${settings.numRuns} batches (seed ${settings.seed}) in ${((Date.now() - started) / 1000).toFixed(1)} s; cases ${kinds}; deliveries ${deliveries}; answers ${statuses}; error codes ${codes}`);
    assert.deepEqual(after, { blocksUsed: 0, active: 0 }, 'no sequence and no KV block is left held');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
