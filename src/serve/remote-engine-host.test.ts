/**
 * A replica over HTTP as an EngineHost: the shared suite against a server in
 * this process, then real `tessera serve` processes and real signals — a
 * SIGSTOPped replica is detected by its silent health polls, a SIGKILLed
 * one by its broken stream and refused connections, a draining one by its
 * 503s and, after the grace period, by the retryable error that ends its
 * streams; each failure is a ReplicaFailure a router can act on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture } from '../testing/fixtures.js';
import { startServeProcess } from '../testing/serve-process.js';
import { greedy, runEngineHostSuite, runSequence, until } from './engine-host.case.js';
import type { SequenceListener } from './engine-host.js';
import { launchServer } from './launch.js';
import { RemoteEngineHost } from './remote-engine-host.js';
import { isReplicaFailure, type FailureReason } from './replica-failure.js';

const KEY = 'replica-key';

runEngineHostSuite('replica over HTTP', async (model) => {
  const server = await launchServer({ model, backend: 'reference', port: 0, apiKey: KEY, servedModelName: 'stories', core: { kvCacheMib: 4, maxNumSeqs: 16, maxBatchTokens: 128 } });
  const host = await RemoteEngineHost.connect(server.url, { apiKey: KEY, pollMs: 100 });
  return {
    host,
    close: async () => {
      await host.close();
      await server.close();
    },
  };
});

/** Submits a long sequence and resolves once its first output has arrived; `failure` settles with its error. */
function longSequence(host: RemoteEngineHost, maxTokens = 480): { started: Promise<void>; failure: Promise<unknown> } {
  let started!: () => void;
  let failed!: (error: unknown) => void;
  const startedPromise = new Promise<void>((resolve) => (started = resolve));
  const failure = new Promise<unknown>((resolve) => (failed = resolve));
  const listener: SequenceListener = { onOutput: (output) => (output.finish ? failed(new Error(`finished (${output.finish}) before the fault`)) : started()), onError: failed };
  host.submit(greedy([1], maxTokens), listener);
  return { started: startedPromise, failure };
}

function assertFailure(error: unknown, reasons: FailureReason[]): void {
  assert.ok(isReplicaFailure(error), `a ReplicaFailure, got ${String(error)}`);
  assert.ok(reasons.includes(error.reason), `reason ${error.reason}, expected one of ${reasons.join(', ')}`);
}

/** A replica process slow enough (one sequence at a time, reference backend) that work is still in flight when it is signalled. */
async function replicaProcess(model: string, extra: string[] = []): Promise<Awaited<ReturnType<typeof startServeProcess>>> {
  return startServeProcess(['--model', model, '--port', '0', '--backend', 'reference', '--api-key', KEY, '--max-num-seqs', '1', '--kv-cache-mib', '4', ...extra]);
}

test('a SIGSTOPped replica is out after the health timeout, its streams fail as hung, and it comes back after SIGCONT', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const replica = await replicaProcess(model);
  const host = await RemoteEngineHost.connect(replica.url, { apiKey: KEY, pollMs: 100, timeoutMs: 800 });
  try {
    const sequence = longSequence(host);
    await sequence.started;
    replica.kill('SIGSTOP');
    const stoppedAt = performance.now();
    assertFailure(await sequence.failure, ['hang']);
    const detectMs = performance.now() - stoppedAt;
    assert.ok(detectMs >= 700 && detectMs < 5000, `detected after ${detectMs} ms`);
    assert.equal(host.health().ready, false);
    assert.equal(host.activeSequences, 0);
    replica.kill('SIGCONT');
    await until(() => host.health().ready, 10_000);
    assert.equal((await runSequence(host, greedy([1], 5))).ids.length, 5);
  } finally {
    await host.close();
    replica.kill('SIGKILL');
  }
});

test('a SIGKILLed replica breaks its streams, then refuses connections and is out', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const replica = await replicaProcess(model);
  const host = await RemoteEngineHost.connect(replica.url, { apiKey: KEY, pollMs: 100, timeoutMs: 800 });
  try {
    const sequence = longSequence(host);
    await sequence.started;
    replica.kill('SIGKILL');
    assertFailure(await sequence.failure, ['broken']);
    await replica.exited;
    await assert.rejects(runSequence(host, greedy([1], 5)), (error) => {
      assertFailure(error, ['refused']);
      return true;
    });
    await until(() => !host.health().ready, 5000);
    assert.match(host.health().status, /unreachable/);
  } finally {
    await host.close();
  }
});

test('SIGTERM drains: new sequences get DRAINING at once, unfinished ones after the grace period, and the replica exits 0', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const replica = await replicaProcess(model, ['--drain-timeout', '1']);
  const host = await RemoteEngineHost.connect(replica.url, { apiKey: KEY, pollMs: 100, timeoutMs: 5000 });
  try {
    // One runs, the others queue behind it (--max-num-seqs 1): together longer than the grace period.
    const sequences = [longSequence(host), longSequence(host), longSequence(host)];
    await sequences[0].started;
    replica.kill('SIGTERM');
    await until(() => host.health().code === 'TESSERA_ERR_DRAINING', 5000);
    await assert.rejects(runSequence(host, greedy([1], 5)), (error) => {
      assertFailure(error, ['draining']);
      return true;
    });
    for (const sequence of sequences.slice(1)) assertFailure(await sequence.failure, ['draining']);
    assert.equal(await replica.exited, 0, replica.stderr());
    assert.match(replica.stderr(), /ended \d+ unfinished requests with TESSERA_ERR_DRAINING/);
  } finally {
    await host.close();
    replica.kill('SIGKILL');
  }
});

test('a wrong replica key is refused at connect with a message naming the flag', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const server = await launchServer({ model, backend: 'reference', port: 0, apiKey: KEY, core: { kvCacheMib: 4 } });
  try {
    await assert.rejects(RemoteEngineHost.connect(server.url, { apiKey: 'wrong' }), /--replica-api-key/);
  } finally {
    await server.close();
  }
});
