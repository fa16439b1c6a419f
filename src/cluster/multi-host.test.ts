/**
 * Multi-host: workers in two network namespaces (separate network stacks,
 * talking over a veth bridge) join a coordinator in the root namespace and
 * run stories260K at tp=2 with the tokens of one process. Skips with the
 * reason when namespaces cannot be made (not root).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Engine } from '../engine/engine.js';
import { fixture, projectRoot } from '../testing/fixtures.js';
import { openMeshEngine } from './mesh-engine.js';
import { makeHosts } from './netns.case.js';

test('tp=2 across two network namespaces gives the tokens of one process', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const hosts = makeHosts(2);
  if (typeof hosts === 'string') {
    t.skip(hosts);
    return;
  }
  const workers: ChildProcess[] = [];
  try {
    let announce: (join: string) => void = () => undefined;
    const joinAddress = new Promise<string>((resolve) => (announce = resolve));
    const log = (line: string): void => {
      const match = /--join (\S+) --token/.exec(line);
      if (match) announce(match[1]);
    };
    const opening = openMeshEngine(path, { tp: 2, pp: 1, transport: 'tcp', spawn: false, host: hosts.bridgeAddress, token: 'netns-token', log });
    const address = await joinAddress;
    const cli = join(projectRoot, 'dist', 'cli', 'main.js');
    for (const ns of hosts.namespaces) {
      workers.push(spawn('ip', ['netns', 'exec', ns, process.execPath, cli, 'worker', '--join', address, '--token', 'netns-token'], { stdio: 'ignore' }));
    }
    const { engine, coordinator } = await opening;
    try {
      const expected = await (await Engine.open(path)).complete({ promptIds: [1], maxTokens: 16 });
      assert.deepEqual((await engine.complete({ promptIds: [1], maxTokens: 16 })).ids, expected.ids);
    } finally {
      await coordinator.close();
    }
  } finally {
    for (const worker of workers) worker.kill('SIGKILL');
    hosts.remove();
  }
});
