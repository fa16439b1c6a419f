/**
 * Disaggregated prefill and decode, end to end with real processes: a
 * `tessera router --pd` over `tessera serve --role prefill` and `--role
 * decode` replicas of stories260K takes the mixed requests of the chaos
 * test (streamed and whole, greedy and seeded, n = 2, stops, penalties,
 * logprobs, a regex response_format, logit_bias) through the official
 * `openai` client. Every response must be byte for byte what one colocated
 * `tessera serve` answers; with a prefill replica SIGKILLed while it is
 * streaming KV, still every one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { fixture } from '../testing/fixtures.js';
import { requestMix, sendMixed, type MixedResult } from '../testing/request-mix.js';
import { startServeProcess, startTesseraProcess } from '../testing/serve-process.js';

const REPLICA_KEY = 'pd-replica-key';
const CLIENT_KEY = 'pd-client-key';
const COUNT = 24;

type Process = Awaited<ReturnType<typeof startServeProcess>>;

function serveArgs(model: string, role: string, extra: string[] = []): string[] {
  return ['--model', model, '--port', '0', '--threads', '1', '--kv-cache-mib', '8', '--served-model-name', 'stories', '--api-key', REPLICA_KEY, '--role', role, ...extra];
}

async function sendAll(url: string, key: string, onChunk?: () => void): Promise<MixedResult[]> {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 120_000 });
  return Promise.all(requestMix('stories', COUNT).map((request) => sendMixed(client, request, onChunk)));
}

/** The sum of a series' values over the label sets that contain `labels` (0 when absent). */
function series(metrics: string, name: string, labels: string): number {
  return metrics
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

async function metricsOf(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

async function colocatedAnswers(model: string, started: Process[]): Promise<MixedResult[]> {
  const reference = await startServeProcess(serveArgs(model, 'both', ['--max-num-seqs', '64']));
  started.push(reference);
  const expected = await sendAll(reference.url, REPLICA_KEY);
  reference.kill('SIGTERM');
  return expected;
}

function routerArgs(model: string, replicas: readonly Process[]): string[] {
  return ['--model', model, '--port', '0', '--pd', '--api-key', CLIENT_KEY, '--replica-api-key', REPLICA_KEY, ...replicas.flatMap((replica) => ['--replica', replica.url])];
}

function assertSame(results: readonly MixedResult[], expected: readonly MixedResult[], stderr: string): void {
  for (let i = 0; i < results.length; i++) {
    assert.equal(results[i].status, 200, `request ${i}\n${stderr}`);
    assert.equal(results[i].body, expected[i].body, `request ${i} differs from the colocated serve`);
  }
}

test('1 prefill + 1 decode replica behind router --pd: 24 mixed requests answer byte for byte as one colocated serve', { timeout: 120_000 }, async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const started: Process[] = [];
  try {
    const expected = await colocatedAnswers(model, started);
    const replicas = await Promise.all([startServeProcess(serveArgs(model, 'prefill')), startServeProcess(serveArgs(model, 'decode'))]);
    started.push(...replicas);
    const router = await startTesseraProcess('router', routerArgs(model, replicas));
    started.push(router);

    assertSame(await sendAll(router.url, CLIENT_KEY), expected, router.stderr());
    const metrics = await metricsOf(router.url);
    assert.ok(series(metrics, 'tessera_pd_sequences_total', 'path="disaggregated"') >= COUNT, `every sequence ran disaggregated\n${metrics}`);
    assert.equal(series(metrics, 'tessera_pd_sequences_total', 'path="colocated"'), 0);
    assert.ok(series(metrics, 'tessera_pd_ttft_seconds_count', 'phase="transfer"') >= 1, 'the TTFT split is recorded');
    const decode = await metricsOf(replicas[1].url);
    assert.ok(series(decode, 'tessera_kv_transfer_bytes_total', 'direction="received"') > 0, 'KV moved to the decode replica');
    assert.equal(series(decode, 'tessera_kv_transfers_total', 'result="failed"'), 0);
    const prefill = await metricsOf(replicas[0].url);
    assert.equal(series(prefill, 'tessera_kv_transfer_bytes_total', 'direction="sent"'), series(decode, 'tessera_kv_transfer_bytes_total', 'direction="received"'));
  } finally {
    for (const child of started) child.kill('SIGKILL');
  }
});

test('a prefill replica SIGKILLed mid-transfer: every request is prefilled again elsewhere and answers byte for byte', { timeout: 120_000 }, async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const started: Process[] = [];
  try {
    const expected = await colocatedAnswers(model, started);
    // Small prefill steps, one sequence at a time: each prefill streams its rows over several steps, and a queue waits behind it.
    const slowPrefill = ['--max-num-seqs', '1', '--max-batch-tokens', '4', '--max-waiting', '200'];
    const replicas = await Promise.all([startServeProcess(serveArgs(model, 'prefill', slowPrefill)), startServeProcess(serveArgs(model, 'prefill', slowPrefill)), startServeProcess(serveArgs(model, 'decode'))]);
    started.push(...replicas);
    const router = await startTesseraProcess('router', routerArgs(model, replicas));
    started.push(router);

    let killed = false;
    const results = await sendAll(router.url, CLIENT_KEY, () => {
      if (killed) return;
      killed = true;
      replicas[0].kill('SIGKILL');
    });
    assert.ok(killed);
    assertSame(results, expected, router.stderr());
    const decode = await metricsOf(replicas[2].url);
    assert.ok(series(decode, 'tessera_kv_transfers_total', 'direction="received",result="failed"') >= 1, `the kill cut transfers the decode replica had reserved blocks for\n${decode}`);
    const metrics = await metricsOf(router.url);
    const moved = series(metrics, 'tessera_router_migrations_total', '') + series(metrics, 'tessera_router_reroutes_total', '');
    assert.ok(moved >= 1, `sequences moved off the killed prefill replica\n${router.stderr()}`);
    assert.match(router.stderr(), new RegExp(`replica ${replicas[0].url}: up → down`));
  } finally {
    for (const child of started) child.kill('SIGKILL');
  }
});
