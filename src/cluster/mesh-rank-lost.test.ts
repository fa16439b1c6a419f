/**
 * A rank lost mid-generation over shared memory (the default transport of
 * forked ranks), by SIGKILL and by SIGSTOP: the survivor is blocked inside a
 * native collective when it happens; the peer's death (kill(pid, 0)) or the
 * heartbeat thread's abort of that plan ends the wait, the mesh re-plans
 * over the survivor on a new segment, and the sequence goes on with the
 * tokens of one process. No segment of either plan is left in /dev/shm.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Engine } from '../engine/engine.js';
import { fixture } from '../testing/fixtures.js';
import { loadNativeComm } from '../parallel/native-comm.js';
import { shmFolder } from '../parallel/shm-segment.js';
import { openMeshEngine } from './mesh-engine.js';

/** Generous: a loaded 2-core machine starts processes slowly. */
const HEARTBEAT = { intervalMs: 200, timeoutMs: 3000 };
const SKIP = loadNativeComm() === undefined ? 'the native addon is not built' : false;

for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
  test(`shm mesh: ${signal} of a rank mid-generation re-plans tp 2 into tp 1 with the same tokens, and leaves no segment`, { skip: SKIP, timeout: 180_000 }, async (t) => {
    const path = fixture(t, 'stories260K.bin');
    if (!path) return;
    const request = { promptIds: [1, 403], maxTokens: 40, sampling: { temperature: 0.8, seed: 5 } };
    const expected = (await (await Engine.open(path)).complete(request)).ids;
    const { engine, coordinator } = await openMeshEngine(path, { tp: 2, pp: 1, transport: 'auto', spawn: true, heartbeat: HEARTBEAT });
    const pids = coordinator.describe().nodes.map((node) => node.pid);
    try {
      const ids: number[] = [];
      for await (const step of engine.generate(request)) {
        if (step.id < 0) continue;
        ids.push(step.id);
        if (ids.length === 12) process.kill(pids[1], signal);
      }
      assert.deepEqual(ids, expected);
      const [first, lost] = [coordinator.reshards.records[0], coordinator.reshards.records.at(-1)];
      assert.equal(first.reason, 'start');
      assert.equal(lost?.reason, 'lost');
      assert.deepEqual([lost?.tp, lost?.pp], [1, 1]);
    } finally {
      await coordinator.close();
      for (const pid of pids) signalIfAlive(pid, 'SIGKILL');
    }
    const left = readdirSync(shmFolder()).filter((name) => pids.some((pid) => name.startsWith(`tessera-shm-${pid}-`)));
    assert.deepEqual(left, []);
  });
}

function signalIfAlive(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}
