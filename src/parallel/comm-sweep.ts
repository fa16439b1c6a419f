/**
 * The measurements of `tessera bench comm`, run in lockstep by every rank:
 * for each message size, each collective's time (the slowest rank's), its
 * algorithm bandwidth and its bus bandwidth (nccl-tests conventions: for
 * all-reduce bus = alg * 2(n-1)/n, for all-gather, reduce-scatter and
 * all-to-all alg * (n-1)/n, broadcast alg), and the raw link throughput
 * between ranks 0 and 1 (a one-way stream of frames, and both ways at once).
 */
import type { Communicator } from './collectives.js';
import { asFloats, floatBytes } from './transport.js';

export interface SweepSettings {
  sizes: number[];
  /** Seconds to spend per (collective, size), roughly. */
  budgetSeconds: number;
}

export interface CollectiveFigure {
  collective: string;
  bytes: number;
  iterations: number;
  /** Mean microseconds per call, slowest rank. */
  latencyUs: number;
  algorithmGBps: number;
  busGBps: number;
}

export interface LinkFigure {
  bytes: number;
  /** Rank 0 → 1 alone. */
  oneWayGBps: number;
  /** Each direction's share while both directions stream at once (what all-reduce's traffic gets). */
  perDirectionBothWaysGBps: number;
}

export interface SweepResults {
  ranks: number;
  link: LinkFigure[];
  collectives: CollectiveFigure[];
}

type Collective = { name: string; busFactor: (n: number) => number; run: (c: Communicator, bytes: number) => () => Promise<unknown> };

const COLLECTIVES: Collective[] = [
  { name: 'all_reduce', busFactor: (n) => (2 * (n - 1)) / n, run: (c, bytes) => { const v = new Float32Array(Math.max(1, bytes / 4)).fill(0); return () => c.allReduce(v); } },
  { name: 'all_gather', busFactor: (n) => (n - 1) / n, run: (c, bytes) => { const v = touched(Math.max(1, Math.floor(bytes / c.size))); return () => c.allGather(v); } },
  { name: 'reduce_scatter', busFactor: (n) => (n - 1) / n, run: (c, bytes) => { const v = new Float32Array(Math.max(1, bytes / 4)).fill(0); return () => c.reduceScatter(v); } },
  { name: 'broadcast', busFactor: () => 1, run: (c, bytes) => { const v = touched(bytes); return () => c.broadcast(v, 0); } },
  { name: 'all_to_all', busFactor: (n) => (n - 1) / n, run: (c, bytes) => { const parts = Array.from({ length: c.size }, () => touched(Math.max(1, Math.floor(bytes / c.size)))); return () => c.allToAll(parts); } },
];

/**
 * A buffer whose pages are really there: a fresh one maps every page to the
 * kernel's one zero page until written, which makes reading it (sending it)
 * unrealistically cheap and writing it (receiving into it) fault in the
 * timed loop.
 */
function touched(bytes: number): Uint8Array {
  return new Uint8Array(bytes).fill(0);
}

export async function runCommSweep(communicator: Communicator, settings: SweepSettings): Promise<SweepResults> {
  const link: LinkFigure[] = [];
  for (const bytes of settings.sizes.filter((size) => size >= 64 * 1024)) link.push(await measureLink(communicator, bytes, settings.budgetSeconds));
  const collectives: CollectiveFigure[] = [];
  for (const collective of COLLECTIVES) {
    for (const bytes of settings.sizes) collectives.push(await measureCollective(communicator, collective, bytes, settings.budgetSeconds));
  }
  return { ranks: communicator.size, link, collectives };
}

async function measureCollective(communicator: Communicator, collective: Collective, bytes: number, budgetSeconds: number): Promise<CollectiveFigure> {
  const call = collective.run(communicator, bytes);
  await call();
  const iterations = await agreedIterations(communicator, call, budgetSeconds);
  await barrier(communicator);
  const started = performance.now();
  for (let i = 0; i < iterations; i++) await call();
  const seconds = (await slowest(communicator, performance.now() - started)) / 1000;
  const perCall = seconds / iterations;
  const algorithm = bytes / perCall / 1e9;
  return { collective: collective.name, bytes, iterations, latencyUs: perCall * 1e6, algorithmGBps: algorithm, busGBps: algorithm * collective.busFactor(communicator.size) };
}

/**
 * Ranks 0 and 1 stream `bytes`-sized frames; the others wait. Frames take
 * the collectives' own path: sent whole, received straight into a buffer
 * allocated (and paged in) once (receiveInto), so the link is measured at
 * its best.
 */
async function measureLink(communicator: Communicator, bytes: number, budgetSeconds: number): Promise<LinkFigure> {
  const index = communicator.index;
  const frame = touched(bytes);
  const landing = touched(bytes);
  const count = Math.max(4, Math.min(256, Math.floor((budgetSeconds * 1e9) / Math.max(bytes, 1) / 4)));
  const oneWay = async (): Promise<void> => {
    if (index === 0) {
      // All frames handed over at once: the link, not this loop, sets the pace.
      await Promise.all(Array.from({ length: count }, () => communicator.send(1, frame)));
      await communicator.receive(1);
    } else if (index === 1) {
      // Every receive posted at once, as the all-reduce does, so no frame waits for one.
      await Promise.all(Array.from({ length: count }, () => communicator.receiveInto(0, landing)));
      await communicator.send(0, new Uint8Array(1));
    }
  };
  const bothWays = async (): Promise<void> => {
    if (index > 1) return;
    const peer = 1 - index;
    const receiving = Promise.all(Array.from({ length: count }, () => communicator.receiveInto(peer, landing)));
    await Promise.all([...Array.from({ length: count }, () => communicator.send(peer, frame)), receiving]);
  };
  await barrier(communicator);
  let started = performance.now();
  await oneWay();
  const oneWaySeconds = (await slowest(communicator, performance.now() - started)) / 1000;
  await barrier(communicator);
  started = performance.now();
  await bothWays();
  const bothSeconds = (await slowest(communicator, performance.now() - started)) / 1000;
  return { bytes, oneWayGBps: (bytes * count) / oneWaySeconds / 1e9, perDirectionBothWaysGBps: (bytes * count) / bothSeconds / 1e9 };
}

/** Iterations that fill about the budget, as rank 0 times them (every rank uses its count). */
async function agreedIterations(communicator: Communicator, call: () => Promise<unknown>, budgetSeconds: number): Promise<number> {
  const started = performance.now();
  await call();
  const once = await slowest(communicator, performance.now() - started);
  return Math.max(3, Math.min(1000, Math.floor((budgetSeconds * 1000) / Math.max(once, 0.001))));
}

async function barrier(communicator: Communicator): Promise<void> {
  await communicator.allGather(new Uint8Array(1));
}

/** The largest of every rank's value (so all ranks agree on it). */
async function slowest(communicator: Communicator, value: number): Promise<number> {
  const all = await communicator.allGather(floatBytes(Float32Array.of(value)));
  return Math.max(...all.map((bytes) => asFloats(bytes.slice())[0]));
}
