/**
 * Forks src/testing/collective-rank.ts as one rank of a test mesh and
 * follows it over IPC: its address first, then its verdict on the
 * collectives. Shared by the data-socket tests.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from './fixtures.js';
import type { MeshAddress, SocketAddress } from '../parallel/socket-transport.js';

const ENTRY = join(projectRoot, 'dist', 'testing', 'collective-rank.js');

export interface RankProcess {
  child: ChildProcess;
  address: SocketAddress;
  stderr: () => string;
  /** The rank's verdict on its collectives: { ok: true } or { failure, code }. */
  result: Promise<Record<string, unknown>>;
}

/** Forks rank `rank` of a 2-rank tcp mesh running the `exact` scenario; `env` adds to the environment. */
export function startRank(rank: number, env: Record<string, string> = {}): Promise<RankProcess> {
  const child = fork(ENTRY, [], {
    env: { ...process.env, TESSERA_TEST_PLANE: 'tcp', TESSERA_TEST_RANK: String(rank), TESSERA_TEST_RANKS: '2', TESSERA_TEST_SCENARIO: 'exact', ...env },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let text = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const messages: Record<string, unknown>[] = [];
  const waiters: ((message: Record<string, unknown>) => void)[] = [];
  child.on('message', (message) => (waiters.length ? waiters.shift()!(message as never) : messages.push(message as never)));
  const next = (): Promise<Record<string, unknown>> =>
    messages.length ? Promise.resolve(messages.shift()!) : new Promise((resolve, reject) => {
      waiters.push(resolve);
      child.once('exit', (code) => reject(new Error(`rank ${rank} exited (${code}):\n${text}`)));
    });
  return next().then((first) => ({ child, address: first.address as SocketAddress, stderr: () => text, result: next() }));
}

/** A tcp rank's native data port. */
export function dataPort(address: MeshAddress): { host: string; port: number } {
  if (address.kind !== 'tcp' || !address.data) throw new Error('a tcp rank with a data socket');
  const at = address.data.lastIndexOf(':');
  return { host: address.data.slice(0, at), port: Number(address.data.slice(at + 1)) };
}
