/**
 * `tessera serve --replicas 2` as a user runs it: one command, two replica
 * processes behind a router. A replica that dies is started again on its
 * port and taken back; SIGTERM stops everything with status 0; a parent
 * that is SIGKILLed takes its replicas with it.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import OpenAI from 'openai';
import { fixture } from '../../testing/fixtures.js';
import { startServeProcess } from '../../testing/serve-process.js';

/** Pids of `parent`'s child processes. */
function childrenOf(parent: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const ARGS = ['--port', '0', '--replicas', '2', '--api-key', 'k', '--backend', 'reference', '--kv-cache-mib', '4', '--served-model-name', 'stories', '--health-interval', '100'];

test('serve --replicas 2: two replicas behind one router; a killed replica comes back; SIGTERM exits 0 with its replicas', { timeout: 90_000 }, async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const server = await startServeProcess(['--model', model, ...ARGS]);
  try {
    assert.match(server.stderr(), /router over 2 replicas, policy prefix/);
    const replicas = childrenOf(server.pid);
    assert.equal(replicas.length, 2, server.stderr());
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'k', maxRetries: 0 });
    const ask = (): Promise<string> => client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 }).then((r) => r.choices[0].text);
    const first = await Promise.all([ask(), ask(), ask(), ask()]);
    assert.equal(new Set(first).size, 1, 'greedy: the same text from either replica');
    process.kill(replicas[0], 'SIGKILL');
    await until(() => /starting it again on the same port/.test(server.stderr()), 'the restart');
    // The router knows it by the new instance its load report names, whether or not the replica was gone long enough
    // (the 2 s health timeout) to be counted down first: on an idle machine it is back on its port in about 1 s.
    // Generous: on a loaded 2-core machine a restarted replica can miss its first start, and each retry waits twice as long.
    await until(() => /: restarted \(a new instance/.test(server.stderr().split('starting it again')[1] ?? ''), 'the router taking it back', 55_000);
    assert.deepEqual(await Promise.all([ask(), ask()]), [first[0], first[0]]);
  } finally {
    server.kill('SIGTERM');
  }
  assert.equal(await server.exited, 0, server.stderr());
  assert.deepEqual(childrenOf(server.pid), []);
});

test('a SIGKILLed serve --replicas takes its replica processes with it', { timeout: 60_000 }, async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const server = await startServeProcess(['--model', model, ...ARGS]);
  const replicas = childrenOf(server.pid);
  assert.equal(replicas.length, 2);
  server.kill('SIGKILL');
  await server.exited;
  await until(() => replicas.every((pid) => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')), 'the replicas to exit', 20_000);
});

test('serve --replicas 1:1 --pd: a prefill and a decode replica behind a --pd router; every sequence moves its KV; the text is the colocated text', { timeout: 90_000 }, async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const args = ['--port', '0', '--api-key', 'k', '--backend', 'reference', '--kv-cache-mib', '4', '--served-model-name', 'stories', '--health-interval', '100'];
  const single = await startServeProcess(['--model', model, ...args]);
  const expected = await new OpenAI({ baseURL: `${single.url}/v1`, apiKey: 'k', maxRetries: 0 }).completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 }).then((r) => r.choices[0].text);
  single.kill('SIGTERM');
  await single.exited;
  const server = await startServeProcess(['--model', model, ...args, '--replicas', '1:1', '--pd']);
  try {
    assert.match(server.stderr(), /disaggregated prefill and decode/);
    await until(() => /1 prefill \+ 1 decode replicas/.test(server.stderr()), 'the pools line');
    assert.equal(childrenOf(server.pid).length, 2);
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'k', maxRetries: 0 });
    // The router routes by its polls: the first requests may run whole until it has seen both roles.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const texts = await Promise.all([0, 1, 2].map(() => client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 }).then((r) => r.choices[0].text)));
    assert.deepEqual(texts, [expected, expected, expected]);
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer k' } })).text();
    assert.match(metrics, /tessera_pd_sequences_total\{path="disaggregated"\} [1-9]/);
  } finally {
    server.kill('SIGTERM');
  }
  assert.equal(await server.exited, 0, server.stderr());
});

test('--replicas P:D needs --pd and a replica on each side', async () => {
  const { replicasOption } = await import('./serve-replicas.js');
  assert.equal(replicasOption('3'), 3);
  assert.deepEqual(replicasOption('1:2'), { prefill: 1, decode: 2 });
  assert.throws(() => replicasOption('0:2'), /at least one prefill and one decode/);
  assert.throws(() => replicasOption('2:x'), /--replicas/);
});
