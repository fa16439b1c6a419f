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
import { test, type TestContext } from 'node:test';
import OpenAI from 'openai';
import { fixture } from '../testing/fixtures.js';
import { loadNativeAddon } from '../backend/native/native-addon.js';
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

/** The value of an unlabelled series (0 when absent). */
function value(metrics: string, name: string): number {
  const line = metrics.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

/**
 * SIGKILLs `replica` while it decodes: once two reads of its metrics a few
 * milliseconds apart show engine steps running with sequences in its batch
 * (a decode of stories260K takes milliseconds, and a replica waiting on
 * prefills is idle most of the time, so a kill at a chosen chunk often
 * found it idle). Gives up waiting after 30 s and kills it anyway (the
 * test's assertions then say what did not happen). Returns its last metrics.
 */
async function killWhileDecoding(replica: Process): Promise<string> {
  const deadline = Date.now() + 30_000;
  let before = await metricsOf(replica.url, REPLICA_KEY);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 3));
    const now = await metricsOf(replica.url, REPLICA_KEY);
    const stepping = value(now, 'tessera_batch_size_count') > value(before, 'tessera_batch_size_count') && value(now, 'tessera_running_sequences') > 0;
    if (stepping || Date.now() > deadline) {
      replica.kill('SIGKILL');
      return now;
    }
    before = now;
  }
}

/** A server's /metrics under `key` (its metrics scope); a refusal fails the test rather than reading as zeros. */
async function metricsOf(url: string, key: string): Promise<string> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${key}` } });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return text;
}

/** A decode replica's held transfers (tessera_kv_direct_held_transfers), read until none are left or `waitMs` has passed: the last reading. */
async function heldTransfersSettled(url: string, waitMs: number): Promise<number> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const held = value(await metricsOf(url, REPLICA_KEY), 'tessera_kv_direct_held_transfers');
    if (held === 0 || Date.now() >= deadline) return held;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
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

/** Small prefill steps, one sequence at a time: each prefill streams its rows over several steps, and a queue waits behind it. */
const SLOW_PREFILL = ['--max-num-seqs', '1', '--max-batch-tokens', '4', '--max-waiting', '200'];

/** Runs `body` on `model` (skipped when absent), then kills every process it started. */
async function withProcesses(model: string | undefined, body: (model: string, started: Process[]) => Promise<void>): Promise<void> {
  if (!model) return;
  const started: Process[] = [];
  try {
    await body(model, started);
  } finally {
    for (const child of started) child.kill('SIGKILL');
  }
}

function nativeAddonLoads(): boolean {
  return loadNativeAddon().ok;
}

function assertSame(results: readonly MixedResult[], expected: readonly MixedResult[], stderr: string): void {
  for (let i = 0; i < results.length; i++) {
    assert.equal(results[i].status, 200, `request ${i}\n${stderr}`);
    assert.equal(results[i].body, expected[i].body, `request ${i} differs from the colocated serve`);
  }
}

/** The colocated answers, then a prefill and a decode replica behind `router --pd [routerExtra]`, sent the same requests: they must answer the same bytes. */
async function pairThroughRouter(model: string, started: Process[], routerExtra: string[] = [], prefillExtra: string[] = [], decodeExtra: string[] = []): Promise<{ replicas: Process[]; router: Process }> {
  const expected = await colocatedAnswers(model, started);
  const replicas = await Promise.all([startServeProcess(serveArgs(model, 'prefill', prefillExtra)), startServeProcess(serveArgs(model, 'decode', decodeExtra))]);
  started.push(...replicas);
  const router = await startTesseraProcess('router', [...routerArgs(model, replicas), ...routerExtra]);
  started.push(router);
  assertSame(await sendAll(router.url, CLIENT_KEY), expected, router.stderr());
  return { replicas, router };
}

test('1 prefill + 1 decode replica behind router --pd: 24 mixed requests answer byte for byte as one colocated serve', { timeout: 120_000 }, async (t) => {
  await withProcesses(fixture(t, 'stories260K.bin'), async (model, started) => {
    const { replicas, router } = await pairThroughRouter(model, started);
    const metrics = await metricsOf(router.url, CLIENT_KEY);
    assert.ok(series(metrics, 'tessera_pd_sequences_total', 'path="disaggregated"') >= COUNT, `every sequence ran disaggregated\n${metrics}`);
    assert.equal(series(metrics, 'tessera_pd_sequences_total', 'path="colocated"'), 0);
    assert.ok(series(metrics, 'tessera_pd_ttft_seconds_count', 'phase="transfer"') >= 1, 'the TTFT split is recorded');
    const decode = await metricsOf(replicas[1].url, REPLICA_KEY);
    assert.ok(series(decode, 'tessera_kv_transfer_bytes_total', 'direction="received"') > 0, 'KV moved to the decode replica');
    assert.equal(series(decode, 'tessera_kv_transfers_total', 'result="failed"'), 0);
    // One host: the rows go straight into the decode blocks once a transfer's target has reached the prefill engine, through the ring before; every copy timed.
    const received = (name: string): number => series(decode, name, 'direction="received"');
    const [bytes, ringBytes, directBytes] = [received('tessera_kv_transfer_bytes_total'), received('tessera_kv_transfer_ring_bytes_total'), received('tessera_kv_transfer_direct_bytes_total')];
    // The 24 arrive at once and wait for the link's ring to be set up: their blocks reach the prefill engine meanwhile, so most rows go directly.
    assert.ok(directBytes > 0, `rows were written directly\n${decode}`);
    assert.equal(ringBytes + directBytes, bytes, 'nothing came inline on the socket');
    const copies = (copy: string): number => series(decode, 'tessera_kv_frame_copy_seconds_count', `copy="${copy}"`);
    assert.equal(copies('write'), copies('read'), 'each ring frame is timed at both ends');
    assert.ok(copies('write') + copies('direct') >= received('tessera_kv_transfer_frames_total'), `every frame's copy is timed\n${decode}`);
    assert.equal(copies('whole'), 0);
    assert.equal(value(decode, 'tessera_kv_direct_held_transfers'), 0, 'no blocks held back');
    const prefill = await metricsOf(replicas[0].url, REPLICA_KEY);
    assert.equal(series(prefill, 'tessera_kv_transfer_bytes_total', 'direction="sent"'), bytes);
    t.diagnostic(`KV bytes: ${directBytes} written directly, ${ringBytes} through the ring`);
  });
});

test('decode replica with --kv-direct off: every row goes through the shared-memory ring, each frame copied twice and timed at both ends; the answers are the same bytes', { timeout: 120_000 }, async (t) => {
  await withProcesses(fixture(t, 'stories260K.bin'), async (model, started) => {
    const { replicas } = await pairThroughRouter(model, started, [], [], ['--kv-direct', 'off']);
    const decode = await metricsOf(replicas[1].url, REPLICA_KEY);
    const frames = series(decode, 'tessera_kv_transfer_frames_total', 'direction="received"');
    assert.equal(series(decode, 'tessera_kv_transfer_ring_bytes_total', 'direction="received"'), series(decode, 'tessera_kv_transfer_bytes_total', 'direction="received"'));
    assert.equal(series(decode, 'tessera_kv_transfer_direct_bytes_total', 'direction="received"'), 0);
    for (const copy of ['write', 'read']) assert.ok(series(decode, 'tessera_kv_frame_copy_seconds_count', `copy="${copy}"`) >= frames && frames > 0, `every frame's ${copy} is timed\n${decode}`);
  });
});

test('a prefill replica stopped (SIGSTOP) mid-run: the decode replica gives its transfers up but holds their blocks until the resumed prefill engine answers that it writes no more; every request answers byte for byte', { timeout: 180_000 }, async (t) => {
  await withProcesses(fixture(t, 'stories260K.bin'), async (model, started) => {
    const expected = await colocatedAnswers(model, started);
    const replicas = await Promise.all([startServeProcess(serveArgs(model, 'prefill', SLOW_PREFILL)), startServeProcess(serveArgs(model, 'decode'))]);
    started.push(...replicas);
    const router = await startTesseraProcess('router', routerArgs(model, replicas));
    started.push(router);
    const [prefill, decode] = replicas;
    // Once the prefill engine knows the blocks of several queued transfers, the prefill replica stops: silent past the router's --health-timeout (2 s), its requests move and the router cancels their transfers at the decode replica.
    const fault = (async (): Promise<{ targets: number; held: number }> => {
      let targets = 0;
      for (const deadline = Date.now() + 30_000; targets < 3 && Date.now() < deadline; ) targets = value(await metricsOf(decode.url, REPLICA_KEY), 'tessera_kv_direct_target_transfers');
      prefill.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      const held = value(await metricsOf(decode.url, REPLICA_KEY), 'tessera_kv_direct_held_transfers');
      prefill.kill('SIGCONT');
      return { targets, held };
    })();
    const results = await sendAll(router.url, CLIENT_KEY);
    const { targets, held: heldWhileStopped } = await fault;
    assertSame(results, expected, router.stderr());
    assert.ok(targets >= 3, `the prefill engine knew the blocks of queued transfers (${targets})`);
    assert.ok(heldWhileStopped >= 1, `the given-up transfers stayed held while their writer was stopped (${heldWhileStopped})`);
    assert.equal(await heldTransfersSettled(decode.url, 20_000), 0, 'the resumed writer answered every revoke: the blocks went back');
    t.diagnostic(`transfers whose blocks the prefill engine knew when it stopped: ${targets}; held while it was stopped: ${heldWhileStopped}`);
  });
});

// Layouts whose KV heads or layers split differently on the two sides: the rows are re-split by head and layer on the way.
for (const [layout, prefillExtra, decodeExtra] of [
  ['a tp 2 prefill replica (two ranks, half the KV heads each) and a one-process decode replica', ['--tp', '2'], []],
  ['a pp 2 prefill replica (two stages, half the layers each) and a one-process decode replica', ['--pp', '2'], []],
  ['a one-process prefill replica and a tp 2 decode replica', [], ['--tp', '2']],
  ['a tp 2 prefill replica and a pp 2 decode replica', ['--tp', '2'], ['--pp', '2']],
] as const) {
  test(`${layout} behind router --pd: 24 mixed requests answer byte for byte`, { timeout: 180_000 }, async (t) => {
    await meshPair(t, fixture(t, 'stories260K.bin'), [...prefillExtra], [...decodeExtra]);
  });
}

// A tp 2 pair that shares rows (native ranks on shared memory, every width a multiple of 16): each rank holds every KV head.
test('a tp 2 prefill and a tp 2 decode replica whose ranks share rows behind router --pd: 24 mixed requests answer byte for byte', { timeout: 180_000, skip: !nativeAddonLoads() && 'the native addon is not built' }, async (t) => {
  await meshPair(t, 'synth:tiny', ['--tp', '2', '--rank-backend', 'native', '--transport', 'shm'], ['--tp', '2', '--rank-backend', 'native', '--transport', 'shm']);
});

/** The mixed requests through a prefill and a decode replica of these layouts (`--rank-threads 1` on a mesh). */
async function meshPair(t: TestContext, model: string | undefined, prefillExtra: string[], decodeExtra: string[]): Promise<void> {
  const ranks = (extra: string[]): string[] => (extra.length > 0 ? [...extra, '--rank-threads', '1'] : extra);
  await withProcesses(model, async (model, started) => {
    const { replicas, router } = await pairThroughRouter(model, started, [], ranks(prefillExtra), ranks(decodeExtra));
    const metrics = await metricsOf(router.url, CLIENT_KEY);
    assert.ok(series(metrics, 'tessera_pd_sequences_total', 'path="disaggregated"') >= COUNT, `every sequence ran disaggregated\n${metrics}`);
    assert.equal(series(metrics, 'tessera_pd_sequences_total', 'path="colocated"'), 0);
    const decode = await metricsOf(replicas[1].url, REPLICA_KEY);
    const received = series(decode, 'tessera_kv_transfer_bytes_total', 'direction="received"');
    assert.ok(received > 0, 'KV moved to the decode replica');
    assert.equal(series(decode, 'tessera_kv_transfers_total', 'result="failed"'), 0);
    const prefill = await metricsOf(replicas[0].url, REPLICA_KEY);
    assert.equal(series(prefill, 'tessera_kv_transfer_bytes_total', 'direction="sent"'), received);
    const direct = series(decode, 'tessera_kv_transfer_direct_bytes_total', 'direction="received"');
    // A one-process decode replica takes runs of any heads directly (a tp 2 rank's half of each row too); a mesh's pools are on its ranks, never offered.
    if (decodeExtra.length === 0) assert.ok(direct > 0, 'rows were written straight into the decode replica\'s blocks');
    else assert.equal(direct, 0);
    t.diagnostic(`KV bytes moved: ${received}, ${direct} of them written directly`);
  });
}

test('router --pd --pd-local-prefill: sequences short enough run whole on the decode replica, no KV moves, the answers are the same bytes', { timeout: 120_000 }, async (t) => {
  await withProcesses(fixture(t, 'stories260K.bin'), async (model, started) => {
    // Every prompt of the mix is far shorter than the limit.
    const { replicas, router } = await pairThroughRouter(model, started, ['--pd-local-prefill', '4096']);
    const metrics = await metricsOf(router.url, CLIENT_KEY);
    assert.ok(series(metrics, 'tessera_pd_sequences_total', 'path="colocated"') >= COUNT, `every sequence ran whole\n${metrics}`);
    assert.equal(series(metrics, 'tessera_pd_sequences_total', 'path="disaggregated"'), 0);
    assert.ok(series(metrics, 'tessera_router_sequences_total', `replica="${replicas[1].url}",reason="short-prompt"`) >= COUNT, 'on the decode replica');
    const prefill = await metricsOf(replicas[0].url, REPLICA_KEY);
    assert.equal(series(prefill, 'tessera_kv_transfer_bytes_total', 'direction="sent"'), 0);
  });
});

test('a prefill replica SIGKILLed mid-transfer and a decode replica mid-decode: every request is prefilled again elsewhere and answers byte for byte', { timeout: 180_000 }, async (t) => {
  await withProcesses(fixture(t, 'stories260K.bin'), async (model, started) => {
    const expected = await colocatedAnswers(model, started);
    const roles = [['prefill', SLOW_PREFILL], ['prefill', SLOW_PREFILL], ['decode', []], ['decode', []]] as const;
    const replicas = await Promise.all(roles.map(([role, extra]) => startServeProcess(serveArgs(model, role, [...extra]))));
    started.push(...replicas);
    const router = await startTesseraProcess('router', routerArgs(model, replicas));
    started.push(router);

    let chunks = 0;
    // What the first decode replica saw of the prefill replica's death, read just before it dies too.
    let firstDecode: Promise<string> | undefined;
    const results = await sendAll(router.url, CLIENT_KEY, () => {
      chunks++;
      if (chunks === 1) replicas[0].kill('SIGKILL');
      if (chunks === 150) firstDecode = killWhileDecoding(replicas[2]);
    });
    assert.ok(chunks > 150 && firstDecode, `both faults happened mid-run (${chunks} chunks)`);
    assertSame(results, expected, router.stderr());
    const cut = (text: string): number => series(text, 'tessera_kv_transfers_total', 'direction="received",result="failed"');
    const failed = cut(await firstDecode) + cut(await metricsOf(replicas[3].url, REPLICA_KEY));
    assert.ok(failed >= 1, 'the kill cut transfers a decode replica had reserved blocks for and was receiving');
    const metrics = await metricsOf(router.url, CLIENT_KEY);
    const moved = series(metrics, 'tessera_router_migrations_total', '') + series(metrics, 'tessera_router_reroutes_total', '');
    assert.ok(moved >= 2, `sequences moved off the killed replicas\n${router.stderr()}`);
    assert.ok(series(metrics, 'tessera_router_migrations_total', 'cause="broken"') >= 1, `streams moved off the killed decode replica mid-decode\n${metrics}`);
    for (const killed of [replicas[0], replicas[2]]) assert.match(router.stderr(), new RegExp(`replica ${killed.url}: up → down`));
    // Blocks the killed prefill engine knew (direct writes) went back once its process was gone.
    assert.equal(await heldTransfersSettled(replicas[3].url, 10_000), 0, 'no blocks stay held for the killed writer');
    t.diagnostic(`KV transfers cut by the prefill kill: ${failed}; sequences moved: ${moved}`);
  });
});

test('a decode replica on a tp 2 mesh loses a rank (SIGKILL) mid-run: transfers into it fail over, its sequences are recomputed, every request answers byte for byte', { timeout: 180_000 }, async (t) => {
  await withProcesses(fixture(t, 'stories260K.bin'), async (model, started) => {
    const expected = await colocatedAnswers(model, started);
    const decodeMesh = ['--tp', '2', '--rank-threads', '1', '--admin-key', ADMIN_KEY, '--heartbeat-timeout-ms', '1000'];
    const replicas = await Promise.all([startServeProcess(serveArgs(model, 'prefill', SLOW_PREFILL)), startServeProcess(serveArgs(model, 'decode', decodeMesh))]);
    started.push(...replicas);
    const router = await startTesseraProcess('router', routerArgs(model, replicas));
    started.push(router);
    const before = await clusterOf(replicas[1].url);
    const victim = before.nodes.find((node) => node.rank === 1)?.pid;
    assert.ok(victim, JSON.stringify(before));
    let chunks = 0;
    const results = await sendAll(router.url, CLIENT_KEY, () => {
      if (++chunks === 40) process.kill(victim, 'SIGKILL');
    });
    assert.ok(chunks > 40, `the kill happened mid-run (${chunks} chunks)`);
    assertSame(results, expected, router.stderr());
    const after = await clusterOf(replicas[1].url);
    assert.equal(after.phase, 'serving');
    assert.equal(after.reshards.at(-1)?.reason, 'lost', 'the decode mesh re-sharded over the survivor');
    const decode = await metricsOf(replicas[1].url, REPLICA_KEY);
    t.diagnostic(`transfers into the decode mesh that failed with the lost rank: ${series(decode, 'tessera_kv_transfers_total', 'direction="received",result="failed"')}`);
  });
});

const ADMIN_KEY = 'pd-admin-key';

/** A mesh replica's /admin/cluster view. */
async function clusterOf(url: string): Promise<{ phase: string; nodes: { rank?: number; pid: number }[]; reshards: { reason: string }[] }> {
  const response = await fetch(`${url}/admin/cluster`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text);
}
