/**
 * The native collectives on real processes over every plane (shared memory,
 * the addon's TCP and Unix sockets): the same bits as the TypeScript tree
 * sum, and a blocked all-reduce that ends with TESSERA_ERR_RANK_LOST when a
 * peer is killed with SIGKILL, when another thread aborts, or when the
 * deadline passes (PLAN contract 3).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { projectRoot } from '../testing/fixtures.js';
import { abortCollectives, loadNativeComm } from './native-comm.js';
import { createShmSegment } from './shm-segment.js';

const ENTRY = join(projectRoot, 'dist', 'testing', 'collective-rank.js');
const PLANES = ['shm', 'tcp', 'unix'] as const;

interface Ranks {
  children: ChildProcess[];
  /** The next IPC message of each rank. */
  next(rank: number): Promise<Record<string, unknown>>;
}

/** Forks `size` ranks on `plane`, hands every rank the addresses, and resolves once they are sent. */
async function startRanks(plane: string, size: number, scenario: string, env: Record<string, string> = {}): Promise<Ranks> {
  const inboxes = Array.from({ length: size }, () => [] as Record<string, unknown>[]);
  const waiting = Array.from({ length: size }, () => [] as ((message: Record<string, unknown>) => void)[]);
  const children = Array.from({ length: size }, (_, rank) => {
    const child = fork(ENTRY, [], {
      env: { ...process.env, ...env, TESSERA_TEST_PLANE: plane, TESSERA_TEST_RANK: String(rank), TESSERA_TEST_RANKS: String(size), TESSERA_TEST_SCENARIO: scenario },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (message) => {
      const waiter = waiting[rank].shift();
      if (waiter) waiter(message as Record<string, unknown>);
      else inboxes[rank].push(message as Record<string, unknown>);
    });
    return child;
  });
  const next = (rank: number): Promise<Record<string, unknown>> => {
    const queued = inboxes[rank].shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      waiting[rank].push(resolve);
      children[rank].once('exit', (code) => reject(new Error(`rank ${rank} exited (code ${code})`)));
    });
  };
  const addresses = await Promise.all(children.map((_, rank) => next(rank).then((message) => message.address)));
  const token = randomBytes(8).toString('hex');
  for (const child of children) child.send({ addresses, token });
  return { children, next };
}

function killAll(ranks: Ranks): void {
  for (const child of ranks.children) if (child.exitCode === null) child.kill('SIGKILL');
}

describe('native collectives on rank processes', { skip: loadNativeComm() === undefined ? 'the native addon is not built' : false }, () => {
  for (const plane of PLANES) {
    for (const size of [2, 4]) {
      it(`${plane}, ${size} ranks: all-reduce (plain and in the shared buffer), all-gather, all-to-all and column all-gather give the TypeScript results bit for bit`, { timeout: 120_000 }, async () => {
        const ranks = await startRanks(plane, size, 'exact');
        try {
          const results = await Promise.all(ranks.children.map((_, rank) => ranks.next(rank)));
          for (const result of results) assert.deepEqual(result, { ok: true });
        } finally {
          killAll(ranks);
        }
      });
    }

    it(`${plane}: a peer killed with SIGKILL ends a blocked all-reduce with TESSERA_ERR_RANK_LOST`, { timeout: 60_000 }, async () => {
      const ranks = await startRanks(plane, 2, 'blocked');
      try {
        await Promise.all([ranks.next(0), ranks.next(1)]);
        const ended = ranks.next(0);
        // Rank 0 is inside the all-reduce (or about to be); its peer dies without a word.
        setTimeout(() => ranks.children[1].kill('SIGKILL'), 200);
        const result = await ended;
        assert.equal(result.code, 'TESSERA_ERR_RANK_LOST', String(result.message));
      } finally {
        killAll(ranks);
      }
    });
  }

  it('abortCollectives() from a worker thread ends a blocked all-reduce with TESSERA_ERR_RANK_LOST', { timeout: 60_000 }, async () => {
    const ranks = await startRanks('shm', 2, 'blocked', { TESSERA_TEST_ABORT_MS: '300' });
    try {
      await Promise.all([ranks.next(0), ranks.next(1)]);
      const result = await ranks.next(0);
      assert.equal(result.code, 'TESSERA_ERR_RANK_LOST');
      assert.match(String(result.message), /aborted/);
    } finally {
      killAll(ranks);
    }
  });

  it('a wait with no progress past TESSERA_COMM_DEADLINE_MS ends with TESSERA_ERR_RANK_LOST', { timeout: 60_000 }, async () => {
    const ranks = await startRanks('tcp', 2, 'blocked', { TESSERA_COMM_DEADLINE_MS: '300' });
    try {
      await Promise.all([ranks.next(0), ranks.next(1)]);
      const result = await ranks.next(0);
      assert.equal(result.code, 'TESSERA_ERR_RANK_LOST');
      assert.match(String(result.message), /no progress for 300 ms/);
      assert.ok((result.ms as number) < 5000, `ended after ${result.ms} ms`);
    } finally {
      killAll(ranks);
    }
  });

  it('abortCollectives(generation) reaches the meshes tagged with that plan or an older one, made before or after it, and no newer one', () => {
    const comm = loadNativeComm()!;
    // Tags far above any plan a test process makes, so this abort reaches nothing else.
    const tag = 1_000_000 + Math.floor(Math.random() * 1000);
    const older = createShmSegment(comm, 0, 1);
    const newer = createShmSegment(comm, 0, 1);
    comm.commSetTag(older.mesh, tag - 1);
    comm.commSetTag(newer.mesh, tag + 1);
    try {
      abortCollectives(tag);
      const later = createShmSegment(comm, 0, 1);
      comm.commSetTag(later.mesh, tag);
      assert.equal(comm.commAborted(older.mesh), true);
      assert.equal(comm.commAborted(later.mesh), true, 'a mesh of the aborted plan made after the abort');
      assert.equal(comm.commAborted(newer.mesh), false, 'the next plan');
      comm.commShmClose(later.mesh);
    } finally {
      comm.commShmClose(older.mesh);
      comm.commShmClose(newer.mesh);
    }
  });
});
