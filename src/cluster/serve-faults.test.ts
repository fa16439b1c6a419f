/**
 * `tessera serve` on a tp 2 × pp 2 mesh of worker processes, 16 streams in
 * flight (continuous batching, prefix caching): a worker lost mid-generation
 * (SIGKILL; SIGSTOP, caught by its missing heartbeats; its network link taken
 * down) leaves every stream completing with the text of a fault-free run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fixture, projectRoot } from '../testing/fixtures.js';
import { ip, makeHosts } from './netns.case.js';
import { clusterOf, serve, streamAll, TEST_HEARTBEAT } from './serve-streams.case.js';
import type { ClusterView } from './cluster-view.js';

const CLI = join(projectRoot, 'dist', 'cli', 'main.js');

let expected: string[] | undefined;

/** The streams' texts on one process, computed once. */
async function faultFree(model: string): Promise<string[]> {
  if (!expected) {
    const single = await serve(model);
    expected = await streamAll(single).finally(() => single.close());
  }
  return expected;
}

/** After a loss of one of 4 ranks: a new generation over the 3 survivors, caused by the loss. */
function checkRecovered(view: ClusterView, victimPid: number): void {
  assert.equal(view.phase, 'serving');
  assert.ok(!view.nodes.some((node) => node.pid === victimPid), 'the lost worker left the membership');
  assert.deepEqual([view.layout?.tp, view.layout?.pp], [2, 1], 'tp kept; three workers make one stage of two');
  const lost = view.reshards.at(-1);
  assert.equal(lost?.reason, 'lost');
  assert.ok(lost?.firstLogitsMs !== undefined, 'the streams resumed on the new plan');
}

for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
  test(`16 streams on tp 2 × pp 2 survive a ${signal} of one worker mid-generation, texts unchanged`, async (t) => {
    const model = fixture(t, 'stories260K.bin');
    if (!model) return;
    const want = await faultFree(model);
    // auto: shared memory and native collectives between the forked ranks, as users get by default.
    const mesh = await serve(model, { tp: 2, pp: 2, ep: 1, transport: 'auto', spawn: true, backend: 'reference', heartbeat: TEST_HEARTBEAT });
    let victim = 0;
    try {
      const before = await clusterOf(mesh);
      // A stage-1 rank for one signal, a stage-0 rank for the other: both stages get lost once.
      const chosen = before.nodes.find((node) => node.rank === (signal === 'SIGKILL' ? 3 : 0));
      assert.ok(chosen, JSON.stringify(before));
      victim = chosen.pid;
      const texts = await streamAll(mesh, { midway: () => void process.kill(victim, signal) });
      assert.deepEqual(texts, want);
      checkRecovered(await clusterOf(mesh), victim);
    } finally {
      await mesh.close();
      if (victim) killQuietly(victim);
    }
  });
}

test('16 streams on tp 2 × pp 2 across network namespaces survive one host cut off (link down), texts unchanged', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const hosts = makeHosts(4);
  if (typeof hosts === 'string') {
    t.skip(hosts);
    return;
  }
  const want = await faultFree(model);
  const workers: ChildProcess[] = [];
  try {
    const port = 20000 + (process.pid % 20000);
    const opening = serve(model, { tp: 2, pp: 2, ep: 1, transport: 'tcp', spawn: false, host: hosts.bridgeAddress, port, token: 'netns-token', backend: 'reference', heartbeat: TEST_HEARTBEAT });
    for (const ns of hosts.namespaces) {
      workers.push(spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, 'worker', '--join', `${hosts.bridgeAddress}:${port}`, '--token', 'netns-token'], { stdio: 'ignore' }));
    }
    const mesh = await opening;
    try {
      const before = await clusterOf(mesh);
      const victim = before.nodes.find((node) => node.rank === 1);
      assert.ok(victim, JSON.stringify(before));
      const host = hosts.addresses.findIndex((address) => victim.address.endsWith(address));
      const texts = await streamAll(mesh, { midway: () => ip(['link', 'set', hosts.links[host], 'down']) });
      assert.deepEqual(texts, want);
      checkRecovered(await clusterOf(mesh), victim.pid);
    } finally {
      await mesh.close();
    }
  } finally {
    for (const worker of workers) worker.kill('SIGKILL');
    hosts.remove();
  }
});

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone (the coordinator ends a lost local worker itself)
  }
}
