/**
 * `tessera bench comm`: forks N ranks on this machine, connects them over
 * shared memory, TCP or Unix sockets, and runs the collective sweep (comm-sweep.ts).
 * Results, with the machine and its load, go to bench/results/ as JSON.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TesseraError } from '../core/errors.js';
import type { SweepResults, SweepSettings } from './comm-sweep.js';
import type { MeshAddress } from './socket-transport.js';
import type { MeshTransportKind } from './transport.js';

export interface CommBenchOptions extends SweepSettings {
  ranks: number;
  transport: MeshTransportKind;
  /** Folder for the JSON result. */
  outDir: string;
}

export interface CommBenchReport extends SweepResults {
  transport: MeshTransportKind;
  machine: { cpu: string; cores: number; memoryGiB: number; loadBefore: number[]; loadAfter: number[] };
  date: string;
  file: string;
}

/** A benchmark rank's longest wait without progress (TESSERA_COMM_DEADLINE_MS overrides it). */
const BENCH_DEADLINE_MS = 60_000;

export async function runCommBench(options: CommBenchOptions): Promise<CommBenchReport> {
  if (!Number.isInteger(options.ranks) || options.ranks < 2) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--ranks must be 2 or more, got ${options.ranks}`);
  const loadBefore = loadavg();
  const entry = fileURLToPath(new URL('./comm-bench-rank.js', import.meta.url));
  const area = { TESSERA_SHM_AREA_MIB: process.env.TESSERA_SHM_AREA_MIB ?? String(areaMiB(options.sizes)) };
  // Ranks that run in lockstep never wait a minute for each other: a wait that long is a bug, ended as an error, not a hang.
  const deadline = { TESSERA_COMM_DEADLINE_MS: process.env.TESSERA_COMM_DEADLINE_MS ?? String(BENCH_DEADLINE_MS) };
  const children = Array.from({ length: options.ranks }, (_, rank) =>
    fork(entry, [], {
      env: { ...process.env, ...area, ...deadline, TESSERA_BENCH_TRANSPORT: options.transport, TESSERA_BENCH_RANK: String(rank), TESSERA_BENCH_RANKS: String(options.ranks) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  try {
    const addresses = await Promise.all(children.map((child) => nextMessage<{ address: MeshAddress }>(child).then((m) => m.address)));
    const results = nextMessage<{ results: SweepResults }>(children[0]);
    const token = randomBytes(8).toString('hex');
    const settings: SweepSettings = { sizes: options.sizes, budgetSeconds: options.budgetSeconds, repetitions: options.repetitions };
    for (const child of children) child.send({ addresses, token, settings });
    const sweep = (await results).results;
    const date = new Date().toISOString();
    mkdirSync(options.outDir, { recursive: true });
    const file = join(options.outDir, `comm-${options.transport}-${options.ranks}ranks-${date.replace(/[:.]/g, '-')}.json`);
    const cpu = cpus();
    const report: CommBenchReport = {
      ...sweep,
      transport: options.transport,
      machine: { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, memoryGiB: Math.round(totalmem() / 2 ** 30), loadBefore, loadAfter: loadavg() },
      date,
      file,
    };
    writeFileSync(file, `${JSON.stringify(report, null, 1)}\n`);
    return report;
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
  }
}

/**
 * The shared area each rank gets (unless TESSERA_SHM_AREA_MIB says): two
 * halves that each hold the largest message, so the all-reduce of a partial
 * computed in place — the model's path — is measured at every size (the
 * default 16 MiB holds 8 MiB partials; a larger one would go as a copy in).
 */
function areaMiB(sizes: readonly number[]): number {
  return Math.max(16, Math.ceil((2 * Math.max(0, ...sizes)) / 2 ** 20));
}

function nextMessage<T>(child: ReturnType<typeof fork>): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new TesseraError('TESSERA_ERR_RANK_LOST', `a benchmark rank exited (code ${code}) early; its error is printed above`));
    child.once('exit', onExit);
    child.once('message', (message) => {
      child.off('exit', onExit);
      resolve(message as T);
    });
  });
}
