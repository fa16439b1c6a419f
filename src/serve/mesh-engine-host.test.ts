/**
 * The EngineHost suite on a tp 2 mesh of rank processes, and what a mesh
 * that lost its ranks looks like from outside: while no worker is left,
 * /ready is 503 with TESSERA_ERR_RANK_LOST, and once the recovery wait is
 * over requests get a 503 with that code (retryable), not a 500. (A mesh
 * that keeps a worker re-shards over it and goes on: src/cluster/serve-*.test.ts.)
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fixture } from '../testing/fixtures.js';
import { runEngineHostSuite } from './engine-host.case.js';
import { launchServer } from './launch.js';
import { LocalEngineHost } from './local-engine-host.js';

const MESH = { tp: 2, pp: 1, ep: 1, transport: 'unix', spawn: true, backend: 'reference' } as const;

runEngineHostSuite('tp 2 mesh of rank processes', async (model) => {
  const host = await LocalEngineHost.start(model, { core: { kvCacheMib: 4, maxNumSeqs: 16, maxBatchTokens: 128 }, mesh: MESH });
  return { host, close: () => host.close() };
});

/** Pids of this process's children that run a mesh rank. */
function rankPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return parent === process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker-main.js');
      } catch {
        return false;
      }
    })
    .map(Number);
}

test('a mesh that lost every rank says 503 TESSERA_ERR_RANK_LOST on /ready and, after its recovery wait, to requests', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const server = await launchServer({ model, port: 0, servedModelName: 'stories', core: { kvCacheMib: 4 }, mesh: { ...MESH, recoveryWaitMs: 2000 } });
  try {
    assert.equal((await fetch(`${server.url}/ready`)).status, 200);
    const ranks = rankPids();
    assert.equal(ranks.length, 2, `rank processes: ${ranks.join(', ')}`);
    for (const rank of ranks) process.kill(rank, 'SIGKILL');
    let ready: Response | undefined;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      ready = await fetch(`${server.url}/ready`);
      if (ready.status === 503) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(ready?.status, 503);
    assert.equal(((await ready!.json()) as { code: string }).code, 'TESSERA_ERR_RANK_LOST');
    const response = await fetch(`${server.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: 'stories', prompt: 'Once', max_tokens: 4 }) });
    assert.equal(response.status, 503);
    const body = (await response.json()) as { error: { code: string; type: string } };
    assert.deepEqual([body.error.code, body.error.type], ['TESSERA_ERR_RANK_LOST', 'service_unavailable']);
  } finally {
    await server.close();
  }
});
