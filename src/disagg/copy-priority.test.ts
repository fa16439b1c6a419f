/**
 * CopyPriority: a copy on a thread lowered for compute runs at the
 * process's priority and the thread's own comes back after it (also when
 * the copy throws); a thread not lowered is left alone; a refused raise is
 * tried once. Then on the real OS, in a worker thread lowered to nice 10 as
 * a prefill engine's is: inside the copy the thread runs at the main
 * thread's nice where this process may raise priorities (root or
 * CAP_SYS_NICE), at 10 where it may not, and at 10 again after it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { CopyPriority, type ThreadPriority } from './copy-priority.js';

/** A thread's nice value in memory, with every change recorded. */
function fakeThread(nice: number, target: number, refuseRaise = false): ThreadPriority & { nice: number; sets: number[] } {
  const thread = {
    nice,
    sets: [] as number[],
    current: () => thread.nice,
    target: () => target,
    set: (value: number) => {
      if (refuseRaise && value < thread.nice) throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
      thread.sets.push(value);
      thread.nice = value;
    },
  };
  return thread;
}

test('a copy on a lowered thread runs at the process priority, and the thread is lowered again after it', () => {
  const thread = fakeThread(10, 0);
  const priority = new CopyPriority(thread);
  assert.equal(priority.run(() => thread.nice), 0);
  assert.equal(thread.nice, 10);
  assert.deepEqual(thread.sets, [0, 10]);
  assert.throws(() => priority.run(() => { throw new Error('ring gone'); }), /ring gone/);
  assert.equal(thread.nice, 10, 'restored after a copy that threw');
});

test('a thread at or above the process priority is left alone', () => {
  for (const nice of [0, -5]) {
    const thread = fakeThread(nice, 0);
    assert.equal(new CopyPriority(thread).run(() => 'copied'), 'copied');
    assert.deepEqual(thread.sets, []);
  }
  const thread = fakeThread(12, 5);
  assert.equal(new CopyPriority(thread).run(() => thread.nice), 5, 'raised to the process\'s own nice value, not to 0');
});

test('a refused raise leaves the copy at the thread priority and is not tried again', () => {
  const thread = fakeThread(10, 0, true);
  const priority = new CopyPriority(thread);
  let reads = 0;
  const counting: ThreadPriority = { ...thread, current: () => (reads++, thread.nice), set: thread.set, target: thread.target };
  const counted = new CopyPriority(counting);
  assert.equal(priority.run(() => thread.nice), 10);
  assert.equal(priority.raisingRefused, true);
  assert.equal(counted.run(() => 1) + counted.run(() => 1), 2);
  assert.equal(reads, 1, 'after a refusal the thread priority is not read again');
});

test('on the OS: a worker thread at nice 10 copies at the main thread\'s nice where raising is allowed, and is back at 10 after', { skip: process.platform !== 'linux' && 'per-thread nice values are a Linux behaviour' }, async () => {
  const module = new URL('./copy-priority.js', import.meta.url).href;
  const code = `
    const { parentPort } = require('node:worker_threads');
    const { getPriority, setPriority } = require('node:os');
    import(${JSON.stringify(module)}).then(({ CopyPriority }) => {
      setPriority(10);
      const priority = new CopyPriority();
      const during = priority.run(() => getPriority(0));
      parentPort.postMessage({ during, after: getPriority(0), refused: priority.raisingRefused, main: getPriority(process.pid) });
    });`;
  const result = await new Promise<{ during: number; after: number; refused: boolean; main: number }>((resolve, reject) => {
    const worker = new Worker(code, { eval: true });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  assert.equal(result.after, 10);
  assert.equal(result.during, result.refused ? 10 : result.main);
  if (process.getuid?.() === 0) assert.equal(result.refused, false, 'root may raise a thread\'s priority');
});
