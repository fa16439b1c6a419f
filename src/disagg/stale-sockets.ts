/**
 * A decode replica's Unix socket file outlives the replica when it is
 * SIGKILLed (nothing runs to unlink it). When a KV listener starts, it
 * removes such leftovers of earlier replicas in its folder: a file named
 * as its own are (`tessera-kv-PID-….sock`) whose process is gone *and* on
 * which nothing answers (a connect is refused). Anything that answers, or
 * that cannot be told (a timeout, a permission error), is left alone: a
 * live replica's socket is never removed, even one of another pid
 * namespace sharing the folder.
 */
import { readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

const NAME = /^tessera-kv-(\d+)-[0-9a-f]+\.sock$/;
const PROBE_TIMEOUT_MS = 500;

/** Removes the stale KV sockets in `dir`; resolves with the paths removed. */
export async function sweepStaleSockets(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const candidates = names.filter((name) => {
    const match = NAME.exec(name);
    return match !== null && !processAlive(Number(match[1]));
  });
  const removed: string[] = [];
  await Promise.all(
    candidates.map(async (name) => {
      const path = join(dir, name);
      if ((await answer(path)) !== 'refused') return;
      rmSync(path, { force: true });
      removed.push(path);
    }),
  );
  return removed;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Whether something accepts a connection on the socket file at `path`. */
function answer(path: string): Promise<'answered' | 'refused' | 'unknown'> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const done = (result: 'answered' | 'refused' | 'unknown'): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done('unknown'), PROBE_TIMEOUT_MS);
    socket.once('connect', () => done('answered'));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED' ? 'refused' : 'unknown'));
  });
}
