/**
 * Keys and TLS as an operator meets them, on real processes: a key from
 * the environment or a file never shows in the process list or the logs;
 * --api-key works but warns; the default bind is loopback; HTTPS on serve
 * and on the router (to HTTPS replicas) with a CA made here, through the
 * official `openai` client, which refuses the server without that CA.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { synthesize } from '../../synth/synthesize.js';
import { projectRoot } from '../../testing/fixtures.js';
import { startTesseraProcess, type ServeProcess } from '../../testing/serve-process.js';
import { makeTestCa } from '../../testing/test-ca.js';

const CLIENT_KEY = 'client-key-5f1e2d3c4b5a6978';
const REPLICA_KEY = 'replica-key-0a1b2c3d4e5f6071';
let dir: string;
let model: string;
const started: (ServeProcess & { kill(signal: NodeJS.Signals): void })[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-security-'));
  model = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: model, format: 'gguf', seed: 3 });
});

after(async () => {
  for (const process of started) process.kill('SIGKILL');
  await Promise.all(started.map((process) => process.exited));
  rmSync(dir, { recursive: true, force: true });
});

async function start(command: 'serve' | 'router', args: string[], env: Record<string, string> = {}): Promise<ServeProcess & { kill(signal: NodeJS.Signals): void }> {
  const child = await startTesseraProcess(command, args, env);
  started.push(child);
  return child;
}

/** One completion through the official client in a child process that trusts `ca` (or only the system's CAs). */
function probe(baseURL: string, key: string, ca?: string): { ok: boolean; text?: string; code?: string; status?: number } {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENAI_API_KEY: key };
  if (ca) env.NODE_EXTRA_CA_CERTS = ca;
  else delete env.NODE_EXTRA_CA_CERTS;
  const result = spawnSync(process.execPath, [join(projectRoot, 'dist', 'testing', 'openai-probe.js'), baseURL, 'tiny'], { encoding: 'utf8', env, timeout: 90_000 });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as { ok: boolean; text?: string; code?: string; status?: number };
}

const SERVE = (): string[] => ['--model', model, '--backend', 'reference', '--port', '0', '--served-model-name', 'tiny', '--kv-cache-mib', '4'];

test('a key from the environment or a key file is in neither the process list nor the logs; the bind is loopback', async () => {
  const file = join(dir, 'keys.txt');
  writeFileSync(file, 'file-key-9a8b7c6d5e4f metrics\n');
  chmodSync(file, 0o600);
  const server = await start('serve', [...SERVE(), '--api-key-file', file], { TESSERA_API_KEY: CLIENT_KEY });
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const commandLine = readFileSync(`/proc/${server.pid}/cmdline`, 'utf8');
  const environ = readFileSync(`/proc/${server.pid}/environ`, 'utf8');
  assert.ok(environ.includes(CLIENT_KEY), 'the key is in its environment, which only its user can read');
  for (const secret of [CLIENT_KEY, 'file-key-9a8b7c6d5e4f']) {
    assert.ok(!commandLine.includes(secret), 'not in the command line');
    assert.ok(!server.stderr().includes(secret), 'not in the log');
  }
  assert.equal(probe(`${server.url}/v1`, CLIENT_KEY).ok, true);
  assert.equal(probe(`${server.url}/v1`, 'file-key-9a8b7c6d5e4f').status, 403, 'a metrics-only key cannot generate');
  assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer file-key-9a8b7c6d5e4f' } })).status, 200);
});

test('--api-key still works, and warns that the process list shows it', async () => {
  const server = await start('serve', [...SERVE(), '--api-key', 'flag-key-123456789']);
  assert.match(server.stderr(), /warning: --api-key shows the key to anyone who can list processes/);
  assert.equal((server.stderr().match(/flag-key-123456789/g) ?? []).length, 0);
  assert.equal(probe(`${server.url}/v1`, 'flag-key-123456789').ok, true);
});

test('HTTPS on serve and on the router (to HTTPS replicas), with a CA made here, through the openai client', async () => {
  const ca = makeTestCa(dir);
  const replicaCert = ca.issue('replica', ['IP:127.0.0.1', 'DNS:localhost']);
  const routerCert = ca.issue('router', ['IP:127.0.0.1', 'DNS:localhost']);
  const replica = await start('serve', [...SERVE(), '--tls-cert', replicaCert.certPath, '--tls-key', replicaCert.keyPath], { TESSERA_API_KEY: REPLICA_KEY });
  assert.match(replica.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const direct = probe(`${replica.url}/v1`, REPLICA_KEY, ca.caPath);
  assert.equal(direct.ok, true, JSON.stringify(direct));
  // The router trusts the replicas' CA the Node way, and holds their key in its environment.
  const router = await start('router', ['--model', model, '--port', '0', '--replica', replica.url, '--tls-cert', routerCert.certPath, '--tls-key', routerCert.keyPath], {
    TESSERA_API_KEY: CLIENT_KEY,
    TESSERA_REPLICA_API_KEY: REPLICA_KEY,
    NODE_EXTRA_CA_CERTS: ca.caPath,
  });
  assert.match(router.url, /^https:\/\//);
  const routed = probe(`${router.url}/v1`, CLIENT_KEY, ca.caPath);
  assert.deepEqual(routed, direct, 'the router answers as the replica does');
  const untrusted = probe(`${router.url}/v1`, CLIENT_KEY);
  assert.equal(untrusted.ok, false);
  assert.match(untrusted.code ?? '', /CERT|SIGN|ISSUER/, JSON.stringify(untrusted));
  await assert.rejects(fetch(router.url.replace('https:', 'http:') + '/health'), 'plain HTTP to the HTTPS port gets no answer');
});

test('a certificate and a key that do not match, or only one of them, are refused before listening', async () => {
  const ca = makeTestCa(dir, 'other-ca');
  const one = ca.issue('one', ['IP:127.0.0.1']);
  const two = ca.issue('two', ['IP:127.0.0.1']);
  const run = (args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [join(projectRoot, 'bin', 'tessera.js'), 'serve', ...SERVE(), ...args], { encoding: 'utf8', timeout: 60_000 });
  const mismatched = run(['--tls-cert', one.certPath, '--tls-key', two.keyPath]);
  assert.notEqual(mismatched.status, 0);
  assert.match(String(mismatched.stderr), /^error TESSERA_ERR_TLS: /m);
  const half = run(['--tls-cert', one.certPath]);
  assert.match(String(half.stderr), /^error TESSERA_ERR_INVALID_ARGUMENT: give --tls-cert and --tls-key together/m);
});

