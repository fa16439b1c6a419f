/**
 * DirectHolds: a given-up transfer's blocks go back only once no direct
 * write can land in them: at once when no writer ever knew them, after the
 * writer's `revoked` while its link is open, and after the writer's
 * process is gone once its link has closed (a stopped process that is
 * still there keeps them held).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { TransferId } from '../engine/kv-messages.js';
import { DirectHolds, processAlive } from './direct-holds.js';

function harness(): { holds: DirectHolds; unheld: string[]; revoked: string[]; alive: Set<number> } {
  const unheld: string[] = [];
  const revoked: string[] = [];
  const alive = new Set<number>();
  const holds = new DirectHolds({
    unhold: (transfer) => unheld.push(transfer),
    revoke: (ring, transfer) => revoked.push(`${ring}/${transfer}`),
    alive: (pid) => alive.has(pid),
    pollMs: 5,
  });
  return { holds, unheld, revoked, alive };
}

const t1 = 't1' as TransferId;
const t2 = 't2' as TransferId;

test('DirectHolds: a transfer on a ring no writer opened is freed at once', () => {
  const { holds, unheld, revoked } = harness();
  holds.held(t1, 'nowhere');
  assert.deepEqual(unheld, ['t1']);
  assert.deepEqual(revoked, []);
  assert.equal(holds.count, 0);
});

test('DirectHolds: on an open link the writer is asked to stop, and the blocks go back on its answer only', () => {
  const { holds, unheld, revoked } = harness();
  holds.opened('r', 100);
  holds.held(t1, 'r');
  holds.held(t2, 'r');
  assert.deepEqual(revoked, ['r/t1', 'r/t2']);
  assert.equal(holds.count, 2);
  holds.revoked('r', t2);
  assert.deepEqual(unheld, ['t2']);
  holds.revoked('r', t2);
  assert.deepEqual(unheld, ['t2'], 'a second answer frees nothing twice');
  assert.equal(holds.count, 1);
  holds.stop();
});

test('DirectHolds: once the link closes, the blocks wait for the writer\'s process to end (a stopped one still exists), those given up after the close too', async () => {
  const { holds, unheld, alive, revoked } = harness();
  alive.add(100);
  holds.opened('r', 100);
  holds.held(t1, 'r');
  holds.closed('r');
  await sleep(30);
  assert.deepEqual(unheld, [], 'the writer is still there: held');
  holds.held(t2, 'r');
  assert.deepEqual(unheld, []);
  assert.deepEqual(revoked, ['r/t1'], 'no revoke on a closed link');
  alive.delete(100);
  await sleep(30);
  assert.deepEqual(unheld.sort(), ['t1', 't2']);
  assert.equal(holds.count, 0);
  holds.stop();
});

test('DirectHolds: a closed link whose writer is gone is forgotten; processAlive sees this process and not a finished one', () => {
  const { holds, unheld } = harness();
  holds.opened('r', 100);
  holds.closed('r');
  holds.held(t1, 'r');
  assert.deepEqual(unheld, ['t1'], 'the writer is gone: nothing of it can be written');
  assert.equal(processAlive(process.pid), true);
  assert.equal(processAlive(2 ** 22 + 12345), false);
});
