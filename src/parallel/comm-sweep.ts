/**
 * The measurements of `tessera bench comm`, run in lockstep by every rank:
 * for each message size, each collective's time (the slowest rank's), its
 * algorithm bandwidth and its bus bandwidth (nccl-tests conventions: for
 * all-reduce bus = alg * 2(n-1)/n, for all-gather, reduce-scatter and
 * all-to-all alg * (n-1)/n, broadcast alg), and the raw link throughput
 * between ranks 0 and 1 (a one-way stream of frames, and both ways at once).
 *
 * With a native plane (shared memory, or the addon's sockets), all-reduce
 * and all-gather are the native collectives the model uses — all-reduce of
 * a partial written into the group's shared buffer, as a row-parallel layer
 * writes it, and of an ordinary array (one copy in) — and the link is the
 * native stream; the other collectives run over the Transport. Each figure
 * says which path it took.
 */
import type { Communicator } from './collectives.js';
import type { NativeCollectiveGroup } from './native-group.js';
import { asFloats, floatBytes } from './transport.js';

export interface SweepSettings {
  sizes: number[];
  /** Seconds to spend per (collective, size), roughly. */
  budgetSeconds: number;
}

export interface CollectiveFigure {
  collective: string;
  /** 'native' (the addon, synchronous) or 'transport' (TypeScript collectives over the Transport). */
  path: 'native' | 'transport';
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
  /** Which plane the link figures and the native collectives used: 'shm', 'socket' or 'transport'. */
  plane: string;
  link: LinkFigure[];
  collectives: CollectiveFigure[];
}

/** What a rank measures with: the TypeScript collectives, and the native ones when the mesh has a native plane. */
export interface SweepTarget {
  communicator: Communicator;
  native?: NativeCollectiveGroup;
  /** The native raw link (commStream), blocking. */
  stream?: (peer: number, frame: Uint8Array, landing: Uint8Array, count: number, sending: boolean, receiving: boolean) => void;
  plane: string;
}

type Call = () => Promise<unknown> | unknown;
type Collective = { name: string; path: 'native' | 'transport'; busFactor: (n: number) => number; run: (t: SweepTarget, bytes: number) => Call | undefined };

const allReduceFactor = (n: number): number => (2 * (n - 1)) / n;
const gatherFactor = (n: number): number => (n - 1) / n;

const COLLECTIVES: Collective[] = [
  {
    // The model's path: the partial is written into the shared buffer (partialBuffer), so nothing is copied in.
    name: 'all_reduce',
    path: 'native',
    busFactor: allReduceFactor,
    run: (t, bytes) => {
      const native = t.native;
      if (!native) return undefined;
      const length = Math.max(1, bytes / 4);
      const fallback = new Float32Array(length).fill(0);
      return () => native.allReduce(native.partialBuffer(length) ?? fallback);
    },
  },
  { name: 'all_reduce_copy_in', path: 'native', busFactor: allReduceFactor, run: (t, bytes) => t.native && nativeCall(t.native, new Float32Array(Math.max(1, bytes / 4)).fill(0)) },
  {
    name: 'all_gather',
    path: 'native',
    busFactor: gatherFactor,
    run: (t, bytes) => {
      const native = t.native;
      const part = touched(Math.max(1, Math.floor(bytes / t.communicator.size)));
      return native && (() => native.allGather(part));
    },
  },
  { name: 'all_reduce', path: 'transport', busFactor: allReduceFactor, run: (t, bytes) => { const v = new Float32Array(Math.max(1, bytes / 4)).fill(0); return () => t.communicator.allReduce(v); } },
  { name: 'all_gather', path: 'transport', busFactor: gatherFactor, run: (t, bytes) => { const v = touched(Math.max(1, Math.floor(bytes / t.communicator.size))); return () => t.communicator.allGather(v); } },
  { name: 'reduce_scatter', path: 'transport', busFactor: gatherFactor, run: (t, bytes) => { const v = new Float32Array(Math.max(1, bytes / 4)).fill(0); return () => t.communicator.reduceScatter(v); } },
  { name: 'broadcast', path: 'transport', busFactor: () => 1, run: (t, bytes) => { const v = touched(bytes); return () => t.communicator.broadcast(v, 0); } },
  { name: 'all_to_all', path: 'transport', busFactor: gatherFactor, run: (t, bytes) => { const parts = Array.from({ length: t.communicator.size }, () => touched(Math.max(1, Math.floor(bytes / t.communicator.size)))); return () => t.communicator.allToAll(parts); } },
];

function nativeCall(native: NativeCollectiveGroup, values: Float32Array): Call {
  return () => native.allReduce(values);
}

/**
 * A buffer whose pages are really there: a fresh one maps every page to the
 * kernel's one zero page until written, which makes reading it (sending it)
 * unrealistically cheap and writing it (receiving into it) fault in the
 * timed loop.
 */
function touched(bytes: number): Uint8Array {
  return new Uint8Array(bytes).fill(0);
}

export async function runCommSweep(target: SweepTarget, settings: SweepSettings): Promise<SweepResults> {
  const link: LinkFigure[] = [];
  for (const bytes of settings.sizes.filter((size) => size >= 64 * 1024)) link.push(await measureLink(target, bytes, settings.budgetSeconds));
  const collectives: CollectiveFigure[] = [];
  for (const collective of COLLECTIVES) {
    for (const bytes of settings.sizes) {
      const call = collective.run(target, bytes);
      if (call) collectives.push(await measureCollective(target, collective, call, bytes, settings.budgetSeconds));
    }
  }
  return { ranks: target.communicator.size, plane: target.plane, link, collectives };
}

async function measureCollective(target: SweepTarget, collective: Collective, call: Call, bytes: number, budgetSeconds: number): Promise<CollectiveFigure> {
  await call();
  const iterations = await agreedIterations(target, call, budgetSeconds);
  await barrier(target);
  const started = performance.now();
  for (let i = 0; i < iterations; i++) await call();
  const seconds = (await slowest(target, performance.now() - started)) / 1000;
  const perCall = seconds / iterations;
  const algorithm = bytes / perCall / 1e9;
  const { name, path } = collective;
  return { collective: name, path, bytes, iterations, latencyUs: perCall * 1e6, algorithmGBps: algorithm, busGBps: algorithm * collective.busFactor(target.communicator.size) };
}

/**
 * Ranks 0 and 1 stream `bytes`-sized frames; the others wait. Natively: the
 * addon's blocking stream through the plane the collectives use. Otherwise
 * frames take the TypeScript collectives' own path: sent whole, received
 * straight into a buffer allocated (and paged in) once (receiveInto).
 */
async function measureLink(target: SweepTarget, bytes: number, budgetSeconds: number): Promise<LinkFigure> {
  const communicator = target.communicator;
  const index = communicator.index;
  const frame = touched(bytes);
  const landing = touched(bytes);
  const count = Math.max(4, Math.min(256, Math.floor((budgetSeconds * 1e9) / Math.max(bytes, 1) / 4)));
  const stream = target.stream;
  const oneWay = async (): Promise<void> => {
    if (stream) {
      if (index <= 1) stream(1 - index, frame, landing, count, index === 0, index === 1);
      return;
    }
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
    if (stream) {
      stream(peer, frame, landing, count, true, true);
      return;
    }
    const receiving = Promise.all(Array.from({ length: count }, () => communicator.receiveInto(peer, landing)));
    await Promise.all([...Array.from({ length: count }, () => communicator.send(peer, frame)), receiving]);
  };
  await barrier(target);
  let started = performance.now();
  await oneWay();
  const oneWaySeconds = (await slowest(target, performance.now() - started)) / 1000;
  await barrier(target);
  started = performance.now();
  await bothWays();
  const bothSeconds = (await slowest(target, performance.now() - started)) / 1000;
  return { bytes, oneWayGBps: (bytes * count) / oneWaySeconds / 1e9, perDirectionBothWaysGBps: (bytes * count) / bothSeconds / 1e9 };
}

/** Iterations that fill about the budget, as the slowest rank times one call (every rank uses the same count). */
async function agreedIterations(target: SweepTarget, call: Call, budgetSeconds: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < 3; i++) await call();
  const once = (await slowest(target, performance.now() - started)) / 3;
  return Math.max(3, Math.min(50_000, Math.floor((budgetSeconds * 1000) / Math.max(once, 0.0005))));
}

async function barrier(target: SweepTarget): Promise<void> {
  if (target.native) target.native.barrier();
  else await target.communicator.allGather(new Uint8Array(1));
}

/** The largest of every rank's value (so all ranks agree on it). */
async function slowest(target: SweepTarget, value: number): Promise<number> {
  const mine = floatBytes(Float32Array.of(value));
  const all = target.native ? target.native.allGather(mine) : await target.communicator.allGather(mine);
  return Math.max(...all.map((bytes) => asFloats(bytes.slice())[0]));
}
