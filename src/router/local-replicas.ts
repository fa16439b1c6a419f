/**
 * The replica processes of `tessera serve --replicas N`: N `tessera serve`
 * children on loopback ports, each with the parent's serve flags and its
 * share of the cores, behind a key only the parent knows. A child that
 * dies is started again on the same port (with a growing pause), so the
 * router finds it back where it was; children exit when the parent does,
 * however it ends (their stdin is a pipe from the parent).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TesseraError } from '../core/errors.js';

/** Set in a child's environment: exit when stdin closes (the parent is gone). */
export const EXIT_WITH_PARENT = 'TESSERA_EXIT_WITH_PARENT';

interface Child {
  index: number;
  process: ChildProcess;
  /** Where it serves: known from its first start on. */
  url: string | undefined;
  /** Starts after the first, for the pause before the next. */
  restarts: number;
  /** When this start said it serves. */
  servingSince: number | undefined;
}

/** A child that served this long is healthy again: its next restart pauses only a second. */
const STABLE_MS = 60_000;

const BIN = fileURLToPath(new URL('../../bin/tessera.js', import.meta.url));
const MAX_RESTART_PAUSE_MS = 30_000;

export class LocalReplicas {
  private readonly children: Child[] = [];
  private stopping = false;

  private constructor(
    /** `tessera serve` flags every child gets (model, key, limits, threads); --port is added per child. */
    private readonly args: readonly string[],
    private readonly log: (line: string) => void,
  ) {}

  /** Starts `count` replicas and resolves with their URLs once each says where it serves. */
  static async start(count: number, args: readonly string[], log: (line: string) => void): Promise<{ replicas: LocalReplicas; urls: string[] }> {
    const replicas = new LocalReplicas(args, log);
    try {
      const urls = await Promise.all(Array.from({ length: count }, (_, index) => replicas.spawn(index, 0, 0)));
      return { replicas, urls };
    } catch (error) {
      await replicas.stop();
      throw error;
    }
  }

  /** The process id of replica `index` (for signals: benchmarks and tests of failures). */
  pid(index: number): number {
    return this.children[index].process.pid!;
  }

  /** SIGTERM to every child (each drains, then exits); SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    await Promise.all(this.children.map((child) => stopChild(child.process, graceMs)));
  }

  private spawn(index: number, port: number, restarts: number, url?: string): Promise<string> {
    // Its own process group: a terminal's Ctrl-C reaches only the parent, which drains the router first and then stops the replicas.
    const child = spawn(process.execPath, [BIN, 'serve', ...this.args, '--port', String(port)], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, [EXIT_WITH_PARENT]: '1' }, detached: true });
    const record: Child = { index, process: child, url, restarts, servingSince: undefined };
    this.children[index] = record;
    return new Promise<string>((resolve, reject) => {
      let pending = '';
      const recent: string[] = [];
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (text: string) => {
        pending += text;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          this.log(`[replica ${index}] ${line}`);
          recent.push(line);
          if (recent.length > 10) recent.shift();
          const match = /^serving "[^"]+" on (http:\/\/\S+) /.exec(line);
          if (match && record.servingSince === undefined) {
            record.url = match[1];
            record.servingSince = performance.now();
            resolve(match[1]);
          }
        }
      });
      child.once('exit', (code, signal) => {
        const why = signal ?? `code ${code}`;
        // A first start that fails is a set-up error (bad flags, bad model): say so. A replica that served before comes back.
        if (!record.url) reject(new TesseraError('TESSERA_ERR_REPLICA_UNAVAILABLE', `replica ${index} exited (${why}) before it served; it said:\n${[...recent, pending].join('\n').trim()}`));
        else if (!this.stopping) this.restart(record, why);
      });
    });
  }

  private restart(child: Child, why: string): void {
    const url = child.url!;
    const stable = child.servingSince !== undefined && performance.now() - child.servingSince > STABLE_MS;
    const restarts = stable ? 0 : child.restarts;
    const pause = Math.min(MAX_RESTART_PAUSE_MS, 1000 * 2 ** restarts);
    this.log(`replica ${child.index} on ${url} exited (${why}); starting it again on the same port in ${pause / 1000} s`);
    setTimeout(() => {
      if (this.stopping) return;
      // Its exit handler restarts it again if this start fails too.
      this.spawn(child.index, Number(new URL(url).port), restarts + 1, url).catch(() => undefined);
    }, pause).unref();
  }
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** In a replica child: exit when the parent's end of stdin closes. */
export function exitWithParent(): void {
  if (process.env[EXIT_WITH_PARENT] !== '1') return;
  process.stdin.on('end', () => process.exit(1));
  process.stdin.on('error', () => process.exit(1));
  process.stdin.resume();
}
