/**
 * The failover acceptance test, with real processes and signals on
 * loopback: a `tessera router` over three `tessera serve` replicas of
 * stories260K takes 48 concurrent requests (streamed and whole, greedy and
 * seeded, n = 2, stop strings, penalties, logprobs) through the official
 * `openai` client. Mid-stream one replica is SIGKILLed and another
 * SIGSTOPped for 5 s. Every request must complete, with no 5xx, byte for
 * byte as one fault-free `tessera serve` answers it, and the router's
 * migration counter must show both faults.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { fixture } from '../testing/fixtures.js';
import { requestMix, sendMixed, type MixedResult } from '../testing/request-mix.js';
import { startServeProcess, startTesseraProcess } from '../testing/serve-process.js';

const REPLICA_KEY = 'chaos-replica-key';
const CLIENT_KEY = 'chaos-client-key';
const STOPPED_MS = 5000;

type Process = Awaited<ReturnType<typeof startServeProcess>>;

/** Flags of every serve process here: one compute thread each (five processes share the machine). */
function serveArgs(model: string): string[] {
  return ['--model', model, '--port', '0', '--threads', '1', '--kv-cache-mib', '8', '--served-model-name', 'stories', '--api-key', REPLICA_KEY];
}

async function sendAll(url: string, key: string, onChunk?: () => void): Promise<MixedResult[]> {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 120_000 });
  return Promise.all(requestMix('stories', 48).map((request) => sendMixed(client, request, onChunk)));
}

/** The value of one series in Prometheus text, 0 when absent. */
function series(metrics: string, name: string, labels: string): number {
  const line = metrics.split('\n').find((candidate) => candidate.startsWith(`${name}{${labels}}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

test('48 requests through a router survive a SIGKILLed and a SIGSTOPped replica, byte-identical to one fault-free serve', { timeout: 120_000 }, async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const started: Process[] = [];
  try {
    const reference = await startServeProcess([...serveArgs(model), '--max-num-seqs', '64']);
    started.push(reference);
    const expected = await sendAll(reference.url, REPLICA_KEY);
    reference.kill('SIGTERM');

    const replicas = await Promise.all([0, 1, 2].map(() => startServeProcess([...serveArgs(model), '--max-num-seqs', '8', '--max-waiting', '200'])));
    started.push(...replicas);
    const routerArgs = ['--model', model, '--port', '0', '--api-key', CLIENT_KEY, '--replica-api-key', REPLICA_KEY, '--health-timeout', '2000', ...replicas.flatMap((replica) => ['--replica', replica.url])];
    const router = await startTesseraProcess('router', routerArgs);
    started.push(router);

    let chunks = 0;
    let killedAt = -1;
    const faults: Promise<void>[] = [];
    const onChunk = (): void => {
      chunks++;
      if (chunks === 150) {
        killedAt = performance.now();
        replicas[0].kill('SIGKILL');
      }
      if (chunks === 250) {
        replicas[1].kill('SIGSTOP');
        faults.push(new Promise((resolve) => setTimeout(() => resolve(replicas[1].kill('SIGCONT')), STOPPED_MS)));
      }
    };
    const results = await sendAll(router.url, CLIENT_KEY, onChunk);
    await Promise.all(faults);
    assert.ok(killedAt > 0 && faults.length === 1, `both faults happened mid-run (${chunks} chunks streamed)`);

    for (let i = 0; i < results.length; i++) {
      assert.equal(results[i].status, 200, `request ${i}`);
      assert.equal(results[i].body, expected[i].body, `request ${i} differs from the fault-free serve`);
    }
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    const broken = series(metrics, 'tessera_router_migrations_total', 'cause="broken"');
    const hung = series(metrics, 'tessera_router_migrations_total', 'cause="hang"');
    assert.ok(broken >= 1, `streams moved off the killed replica: ${broken}\n${router.stderr()}`);
    assert.ok(hung >= 1, `streams moved off the stopped replica: ${hung}\n${router.stderr()}`);
    assert.ok(series(metrics, 'tessera_router_replica_transitions_total', `replica="${replicas[1].url}",to="down"`) >= 1);

    // The stopped replica is back after SIGCONT: half-open, then up after a trial request.
    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
    const deadline = performance.now() + 20_000;
    while (!/replica \S+: half-open → up/.test(router.stderr()) && performance.now() < deadline) {
      await Promise.all([0, 1, 2].map(() => client.completions.create({ model: 'stories', prompt: 'Once', max_tokens: 4 })));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.match(router.stderr(), new RegExp(`replica ${replicas[1].url}: half-open → up`));
  } finally {
    for (const child of started) child.kill('SIGKILL');
  }
});
