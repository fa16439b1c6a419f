/**
 * A prefill replica's engine thread runs at a lowered priority (nice 10,
 * `--engine-nice`) so that its compute yields to the decode replica's; but
 * while it copies a layer's rows into a KV ring it is on the transfer's
 * critical path, and at nice 10 any runnable thread of normal priority
 * (an event loop, the router, a client) takes its core for milliseconds in
 * the middle of a copy. Measured in `bench pd` runs here with each frame's
 * copy logged: the ten slowest ring writes held 81 of 139 ms of write time
 * (one took 38 ms); with the copies raised to the event loop's priority,
 * 12 of 60 and 27 of 72 ms (longest 8 and 15 ms). So each copy runs at the
 * process's own (its main thread's) nice value and the compute priority is
 * restored after it.
 *
 * Raising a thread's priority needs CAP_SYS_NICE (or an RLIMIT_NICE that
 * allows it): without it the first attempt fails, the copies run at the
 * thread's priority, and no further attempt is made. Lowering it back needs
 * nothing.
 */
import { getPriority, setPriority } from 'node:os';

export interface ThreadPriority {
  /** The calling thread's nice value. */
  current(): number;
  /** Sets the calling thread's nice value (throws when not permitted). */
  set(nice: number): void;
  /** The nice value copies run at (the process's main thread's). */
  target(): number;
}

/** Linux: `pid` 0 is the calling thread; the process id names its main thread. */
export const osThreadPriority: ThreadPriority = {
  current: () => getPriority(0),
  set: (nice) => setPriority(0, nice),
  target: () => getPriority(process.pid),
};

export class CopyPriority {
  private refused = false;
  private readonly target: number;

  constructor(private readonly priority: ThreadPriority = osThreadPriority) {
    this.target = safely(() => priority.target()) ?? 0;
  }

  /** Whether raising the priority was refused (the copies then run at the thread's own). */
  get raisingRefused(): boolean {
    return this.refused;
  }

  /** Runs `copy` at the process's priority when this thread runs below it, then restores the thread's. */
  run<T>(copy: () => T): T {
    const nice = this.refused ? undefined : safely(() => this.priority.current());
    if (nice === undefined || nice <= this.target) return copy();
    try {
      this.priority.set(this.target);
    } catch {
      this.refused = true;
      return copy();
    }
    try {
      return copy();
    } finally {
      this.priority.set(nice);
    }
  }
}

function safely(read: () => number): number | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
