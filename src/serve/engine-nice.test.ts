/**
 * --engine-nice (launch.ts, engine-worker.ts): every replica's engine
 * thread runs at nice 0 by default, whatever its role, and an explicit
 * value lowers it; the process's own thread (the HTTP event loop) keeps
 * its priority. Read from /proc for the threads of this process (the
 * server runs here, its engine in a worker thread), so Linux only.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fixture } from '../testing/fixtures.js';
import { launchServer } from './launch.js';
import type { ReplicaRole } from './pd-protocol.js';

/** The nice value of each thread of this process, by thread id. */
function threadNices(): Map<number, number> {
  const nices = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the command's closing parenthesis: state is field 3, nice field 19.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    nices.set(Number(tid), Number(fields[16]));
  }
  return nices;
}

/** Threads a server started at a nice value other than 0. */
async function nicedThreads(model: string, role: ReplicaRole, engineNice?: number): Promise<number[]> {
  const before = new Set(threadNices().keys());
  const server = await launchServer({ model, backend: 'reference', port: 0, core: { kvCacheMib: 2 }, pd: { role, engineNice } });
  try {
    return [...threadNices()].filter(([tid, nice]) => !before.has(tid) && nice !== 0).map(([, nice]) => nice);
  } finally {
    await server.close();
  }
}

test('no replica lowers its engine thread by default, --engine-nice does (prefill or decode); the event loop stays at 0', { skip: process.platform !== 'linux' && 'nice values are read from /proc' }, async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  assert.deepEqual(await nicedThreads(model, 'prefill'), []);
  assert.deepEqual(await nicedThreads(model, 'decode'), []);
  assert.deepEqual(await nicedThreads(model, 'prefill', 10), [10]);
  assert.deepEqual(await nicedThreads(model, 'decode', 5), [5]);
  assert.equal(threadNices().get(process.pid), 0, 'the main thread keeps its priority');
});
