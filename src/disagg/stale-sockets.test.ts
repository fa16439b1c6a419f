/**
 * Stale KV sockets: a socket file of a dead process on which nothing
 * answers is removed; one something answers on, one of a live process and
 * files not named as KV sockets are left alone. Real sockets, a real
 * SIGKILLed process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sweepStaleSockets } from './stale-sockets.js';

/** A child that listens on `path`, then is SIGKILLed: its socket file stays. Resolves with its pid. */
async function killedListener(dir: string): Promise<{ pid: number; path: string }> {
  const child = spawn(process.execPath, ['-e', `const n=require('net');const p=require('path').join(${JSON.stringify(dir)},'tessera-kv-'+process.pid+'-0badc0de.sock');n.createServer().listen(p,()=>console.log(p));`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const path = await new Promise<string>((resolve) => child.stdout!.once('data', (data: Buffer) => resolve(data.toString().trim())));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return { pid: child.pid!, path };
}

test('a SIGKILLed listener\'s socket is removed; live ones and other files stay', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-stale-'));
  const live = createServer();
  try {
    const dead = await killedListener(dir);
    assert.ok(existsSync(dead.path), 'SIGKILL leaves the socket file');
    // A socket that answers, named as if its process were gone (another pid namespace): kept.
    const answering = join(dir, `tessera-kv-${dead.pid}-00ff00ff.sock`);
    await new Promise<void>((resolve) => live.listen(answering, resolve));
    const mine = join(dir, `tessera-kv-${process.pid}-12345678.sock`);
    writeFileSync(mine, '');
    const other = join(dir, 'unrelated.sock');
    writeFileSync(other, '');
    assert.deepEqual(await sweepStaleSockets(dir), [dead.path]);
    assert.equal(existsSync(dead.path), false);
    for (const kept of [answering, mine, other]) assert.ok(existsSync(kept), kept);
  } finally {
    live.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
