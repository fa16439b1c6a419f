/**
 * Rank processes forked on this machine (`--tp/--pp` without `--listen`):
 * they join like any worker, with the token in their environment so it never
 * shows in process lists.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TesseraError } from '../core/errors.js';

/**
 * V8 flags of a forked rank. Single-threaded GC: the ranks of a
 * tensor-parallel stage compute in lockstep, each on a core of its own, so a
 * collection whose helper threads take a core from the other rank stalls
 * that rank's peer for as long (scavenges came every ~5 tokens, and the
 * other rank waited 1-10 ms a token); on its own thread a collection only
 * delays its own rank, whose peer takes more of the shared rows meanwhile.
 */
export const RANK_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];

export function spawnWorkers(size: number, join: string, token: string): ChildProcess[] {
  const entry = fileURLToPath(new URL('./worker-main.js', import.meta.url));
  return Array.from({ length: size }, () =>
    spawn(process.execPath, [...RANK_NODE_FLAGS, entry, '--join', join], {
      env: { ...process.env, TESSERA_JOIN_TOKEN: token, TESSERA_WORKER_QUIET: '1' },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Rejects when any of `children` exits (before the mesh is up, that fails the start); marked handled. */
export function earlyExit(children: readonly ChildProcess[]): Promise<never> {
  const exit = new Promise<never>((_, reject) => {
    for (const child of children) {
      child.once('exit', (code) => reject(new TesseraError('TESSERA_ERR_RANK_LOST', `a local worker exited (code ${code}) before the mesh was up; its error is printed above`)));
    }
  });
  exit.catch(() => undefined);
  return exit;
}
