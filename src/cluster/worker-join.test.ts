/**
 * `tessera worker --join`: workers started on their own join a listening
 * coordinator; a wrong token is refused and logged; a worker killed between
 * runs leaves a tp 1 mesh on the other that gives the same tokens; with no
 * worker left, a run fails with TESSERA_ERR_RANK_LOST instead of hanging.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Engine } from '../engine/engine.js';
import { fixture, projectRoot } from '../testing/fixtures.js';
import { openMeshEngine } from './mesh-engine.js';

const CLI = join(projectRoot, 'dist', 'cli', 'main.js');

test('workers join with the token, a wrong token is refused and logged, the mesh re-shards around a killed worker, and fails when none is left', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const lines: string[] = [];
  let announce: (join: string) => void = () => undefined;
  const joinAddress = new Promise<string>((resolve) => (announce = resolve));
  const log = (line: string): void => {
    lines.push(line);
    const match = /--join (\S+) --token/.exec(line);
    if (match) announce(match[1]);
  };
  const opening = openMeshEngine(path, { tp: 2, pp: 1, transport: 'tcp', spawn: false, token: 'right-token', log, recoveryWaitMs: 3000 });
  const address = await joinAddress;

  // Asynchronously: the coordinator answers on this process's event loop.
  const intruder = await runToEnd(spawn(process.execPath, [CLI, 'worker', '--join', address, '--token', 'wrong-token'], { stdio: ['ignore', 'ignore', 'pipe'] }));
  assert.notEqual(intruder.status, 0);
  assert.match(intruder.stderr, /TESSERA_ERR_JOIN_REFUSED/);
  assert.ok(lines.some((line) => /refused a worker join .*wrong token/.test(line)), lines.join('\n'));

  const workers: ChildProcess[] = [0, 1].map(() => spawn(process.execPath, [CLI, 'worker', '--join', address, '--token', 'right-token'], { stdio: 'ignore' }));
  try {
    const { engine, coordinator } = await opening;
    try {
      const expected = await (await Engine.open(path)).complete({ promptIds: [1], maxTokens: 8 });
      assert.deepEqual((await engine.complete({ promptIds: [1], maxTokens: 8 })).ids, expected.ids);
      workers[1].kill('SIGKILL');
      assert.deepEqual((await engine.complete({ promptIds: [1], maxTokens: 8 })).ids, expected.ids);
      assert.deepEqual(coordinator.describe().layout, { tp: 1, pp: 1, ep: 1, layers: [[0, 5]] });
      workers[0].kill('SIGKILL');
      await assert.rejects(engine.complete({ promptIds: [1], maxTokens: 8 }), { code: 'TESSERA_ERR_RANK_LOST' });
    } finally {
      await coordinator.close();
    }
  } finally {
    for (const worker of workers) worker.kill('SIGKILL');
  }
});

function runToEnd(child: ChildProcess): Promise<{ status: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stderr })));
}
