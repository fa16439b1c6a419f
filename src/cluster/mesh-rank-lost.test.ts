/**
 * A rank killed with SIGKILL in the middle of a generation over shared
 * memory: the generation fails with TESSERA_ERR_RANK_LOST (not a hang), the
 * surviving rank leaves too, and no segment is left in /dev/shm.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, projectRoot } from '../testing/fixtures.js';
import { loadNativeComm } from '../parallel/native-comm.js';
import { shmFolder } from '../parallel/shm-segment.js';
import { openMeshEngine } from './mesh-engine.js';

const CLI = join(projectRoot, 'dist', 'cli', 'main.js');

test('shm mesh: kill -9 of a rank mid-generation is TESSERA_ERR_RANK_LOST, and the other rank exits', { skip: loadNativeComm() === undefined ? 'the native addon is not built' : false, timeout: 120_000 }, async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  let announce: (join: string) => void = () => undefined;
  const joinAddress = new Promise<string>((resolve) => (announce = resolve));
  const log = (line: string): void => {
    const match = /--join (\S+) --token/.exec(line);
    if (match) announce(match[1]);
  };
  // Workers started here join over shared memory: the test holds their pids.
  const opening = openMeshEngine(path, { tp: 2, pp: 1, transport: 'shm', spawn: false, token: 'shm-token', log });
  const address = await joinAddress;
  const workers: ChildProcess[] = [0, 1].map(() => spawn(process.execPath, [CLI, 'worker', '--join', address, '--token', 'shm-token'], { stdio: 'ignore' }));
  const exited = workers.map((worker) => new Promise<void>((resolve) => worker.once('exit', () => resolve())));
  try {
    const { engine, coordinator } = await opening;
    const steps = engine.generate({ promptIds: [1], maxTokens: 400, ignoreEos: true });
    for (let i = 0; i < 5; i++) await steps.next();
    workers[1].kill('SIGKILL');
    await assert.rejects(
      (async () => {
        for (;;) if ((await steps.next()).done) break;
      })(),
      { code: 'TESSERA_ERR_RANK_LOST' },
    );
    await coordinator.close();
    await Promise.race([exited[0], new Promise((_, reject) => setTimeout(() => reject(new Error('the surviving rank did not exit')), 20_000))]);
    assert.deepEqual(readdirSync(shmFolder()).filter((name) => workers.some((worker) => name.startsWith(`tessera-shm-${worker.pid}-`))), []);
  } finally {
    for (const worker of workers) worker.kill('SIGKILL');
  }
});
