/**
 * Keys and scopes on a live server: every route answers 401 without a key
 * (unless public), 403 to a key without its scope, and lets a key with the
 * scope through; keys are compared by digest; a key file's format.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readKeyFile, securityOf } from '../cli/security-options.js';
import { synthesize } from '../synth/synthesize.js';
import { apiKey, Keyring } from './api-keys.js';
import { launchServer } from './launch.js';
import { REPLICA_LOAD_PATH, REPLICA_SEQUENCES_PATH } from './replica-protocol.js';
import type { TesseraServer } from './server.js';

const KEYS = { inference: 'key-inference-0123', metrics: 'key-metrics-4567', admin: 'key-admin-89ab', all: 'key-all-cdef0123' };
let dir: string;
let server: TesseraServer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-scopes-'));
  const model = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: model, format: 'gguf', seed: 3 });
  const keys = [apiKey(KEYS.inference, ['inference'], 'i'), apiKey(KEYS.metrics, ['metrics'], 'm'), apiKey(KEYS.admin, ['admin'], 'a'), apiKey(KEYS.all, ['inference', 'metrics', 'admin'], 'all')];
  server = await launchServer({ model, backend: 'reference', port: 0, keys, servedModelName: 'tiny', core: { kvCacheMib: 4, maxNumSeqs: 4, maxBatchTokens: 64 } });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Access = 'public' | 'inference' | 'metrics' | 'admin';

/** Every route the server has, and what it needs. */
const ROUTES: [string, string, Access, unknown?][] = [
  ['GET', '/health', 'public'],
  ['GET', '/ready', 'public'],
  ['GET', '/dashboard', 'public'],
  ['GET', '/dashboard/app.js', 'public'],
  ['GET', '/dashboard/app.css', 'public'],
  ['GET', '/dashboard/echarts.min.js', 'public'],
  ['GET', '/dashboard/state', 'metrics'],
  ['GET', '/metrics', 'metrics'],
  ['GET', '/v1/models', 'inference'],
  ['GET', '/v1/models/tiny', 'inference'],
  ['POST', '/v1/completions', 'inference', { model: 'tiny', prompt: 'a', max_tokens: 1 }],
  ['POST', '/v1/chat/completions', 'inference', { model: 'tiny', messages: [{ role: 'user', content: 'a' }], max_tokens: 1 }],
  ['POST', '/tokenize', 'inference', { prompt: 'a' }],
  ['POST', '/detokenize', 'inference', { tokens: [1] }],
  ['GET', REPLICA_LOAD_PATH, 'inference'],
  ['POST', REPLICA_SEQUENCES_PATH, 'inference', { model: 'tiny', request: { promptIds: [1, 2], maxTokens: 1, sampling: { temperature: 0 } } }],
  ['GET', '/admin/cluster', 'admin'],
  ['GET', '/no/such/route', 'inference'],
];

async function call(method: string, path: string, body: unknown, key?: string): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
  const response = await fetch(`${server.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  await response.arrayBuffer();
  return response.status;
}

test('every route is public or needs its scope: 401 without a key, 403 with another scope, through with its own', async () => {
  for (const [method, path, access, body] of ROUTES) {
    const without = await call(method, path, body);
    if (access === 'public') {
      assert.ok(without < 400, `${method} ${path} is public: ${without}`);
      continue;
    }
    assert.equal(without, 401, `${method} ${path} without a key`);
    assert.equal(await call(method, path, body, 'not-a-key-at-all'), 401, `${method} ${path} with a wrong key`);
    for (const scope of ['inference', 'metrics', 'admin'] as const) {
      const status = await call(method, path, body, KEYS[scope]);
      if (scope === access) assert.ok(status !== 401 && status !== 403, `${method} ${path} with the ${scope} key: ${status}`);
      else assert.equal(status, 403, `${method} ${path} with the ${scope} key`);
    }
    const all = await call(method, path, body, KEYS.all);
    assert.ok(all !== 401 && all !== 403, `${method} ${path} with every scope: ${all}`);
  }
});

test('a 403 names the missing scope in the OpenAI error shape, and a 401 asks for a bearer key', async () => {
  const forbidden = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${KEYS.inference}` } });
  assert.equal(forbidden.status, 403);
  const body = (await forbidden.json()) as { error: { code: string; type: string; message: string } };
  assert.equal(body.error.code, 'insufficient_scope');
  assert.equal(body.error.type, 'permission_error');
  assert.match(body.error.message, /metrics scope/);
  const missing = await fetch(`${server.url}/v1/models`);
  assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
});

test('the keyring finds keys by digest (bearer in any case), never by prefix or with spaces around', () => {
  const ring = new Keyring([apiKey('alpha-key-1', ['inference'], 'a'), apiKey('beta-key-2', ['metrics'], 'b')]);
  assert.equal(ring.find('Bearer beta-key-2')?.label, 'b');
  assert.equal(ring.find('bearer alpha-key-1')?.label, 'a');
  assert.equal(ring.find('Bearer alpha-key-'), undefined);
  assert.equal(ring.find('Bearer alpha-key-1x'), undefined);
  assert.equal(ring.find('alpha-key-1'), undefined);
  assert.equal(ring.find(undefined), undefined);
  assert.equal(new Keyring([]).open, true);
});

test('key files: KEY [scopes] a line, comments and blank lines skipped; a bad scope is a coded error that does not repeat the key', () => {
  const file = join(dir, 'keys.txt');
  writeFileSync(file, '# clients\nclient-secret-1\nops-secret-22 metrics,admin  # the operators\n\n');
  chmodSync(file, 0o600);
  const keys = readKeyFile(file);
  assert.deepEqual(keys.map((key) => [...key.scopes]), [['inference', 'metrics'], ['metrics', 'admin']]);
  writeFileSync(file, 'leaky-secret-333 inference,root\n');
  assert.throws(() => readKeyFile(file), (error: Error & { code?: string }) => error.code === 'TESSERA_ERR_INVALID_ARGUMENT' && /unknown scope "root"/.test(error.message) && !error.message.includes('leaky-secret-333'));
  const warnings: string[] = [];
  writeFileSync(file, 'shared-secret-4444\n');
  chmodSync(file, 0o644);
  const { keys: fromFlags } = securityOf({ host: '0.0.0.0', apiKeyFile: [file] }, (line) => warnings.push(line), {});
  assert.equal(fromFlags.length, 1);
  assert.ok(warnings.some((line) => /can be read by other users/.test(line)), warnings.join('\n'));
  assert.ok(warnings.some((line) => /plain HTTP/.test(line)), warnings.join('\n'));
  assert.ok(warnings.every((line) => !line.includes('shared-secret-4444')));
});
