/**
 * The measurements of `tessera bench comm`, run in lockstep by every rank:
 * for each message size, each collective's time (the slowest rank's), its
 * algorithm bandwidth and its bus bandwidth (nccl-tests conventions: for
 * all-reduce bus = alg * 2(n-1)/n, for all-gather, reduce-scatter and
 * all-to-all alg * (n-1)/n, broadcast alg), and the raw link throughput
 * between ranks 0 and 1 (comm-link.ts: one way, and both ways at once).
 *
 * With a native plane (shared memory, or the addon's sockets), all-reduce
 * and all-gather are the native collectives the model uses — all-reduce of
 * a partial written into the group's shared buffer, as a row-parallel layer
 * writes it, and of an ordinary array (one copy in) — and the link is the
 * native stream; the other collectives run over the Transport. Each figure
 * says which path it took.
 *
 * This machine's speed drifts (other work, a virtual machine's neighbours),
 * so every measurement of a size is repeated, the repetitions interleaved —
 * link, then each collective, then the next repetition in reverse order —
 * and the figures are medians; the JSON keeps every repetition, and the
 * all-reduce's ratio to the one-way link is taken repetition by repetition
 * too, between neighbours in time.
 */
import type { Communicator } from './collectives.js';
import { framesFor, linkProbe, touched } from './comm-link.js';
import type { NativeCollectiveGroup } from './native-group.js';
import { asFloats, floatBytes } from './transport.js';

export interface SweepSettings {
  sizes: number[];
  /** Seconds to spend per (collective, size), roughly, all repetitions together. */
  budgetSeconds: number;
  /** Interleaved repetitions of every measurement of a size (default 5); figures are their medians. */
  repetitions?: number;
}

export interface CollectiveFigure {
  collective: string;
  /** 'native' (the addon, synchronous) or 'transport' (TypeScript collectives over the Transport). */
  path: 'native' | 'transport';
  bytes: number;
  /** Calls per repetition. */
  iterations: number;
  /** Median over the repetitions of the mean microseconds per call, slowest rank. */
  latencyUs: number;
  algorithmGBps: number;
  busGBps: number;
  /** Each repetition's mean microseconds per call, in the order they ran. */
  repetitionsUs: number[];
}

export interface LinkFigure {
  bytes: number;
  /** Frames per repetition. */
  frames: number;
  /** Rank 0 → 1 alone (median of the repetitions). */
  oneWayGBps: number;
  /** Each direction's share while both directions stream at once (what all-reduce's traffic gets). */
  perDirectionBothWaysGBps: number;
  oneWayRepetitionsGBps: number[];
  bothWaysRepetitionsGBps: number[];
}

/** An all-reduce's bus bandwidth over the one-way link at one size: of the medians, and repetition by repetition. */
export interface LinkRatio {
  collective: string;
  path: 'native' | 'transport';
  bytes: number;
  busGBps: number;
  oneWayGBps: number;
  ratio: number;
  /** Repetition i's all-reduce over repetition i's one-way stream (run next to each other). */
  repetitionRatios: number[];
}

export interface SweepResults {
  ranks: number;
  /** Which plane the link figures and the native collectives used: 'shm', 'socket' or 'transport'. */
  plane: string;
  repetitions: number;
  link: LinkFigure[];
  collectives: CollectiveFigure[];
  allReduceOverLink: LinkRatio[];
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
const DEFAULT_REPETITIONS = 5;
const WARM_UP_CALLS = 3;

const COLLECTIVES: Collective[] = [
  {
    // The model's path: the partial is written into the shared buffer (partialBuffer), so nothing is copied in.
    // A size the buffer cannot hold is left out rather than measured as a copy in under this name.
    name: 'all_reduce',
    path: 'native',
    busFactor: allReduceFactor,
    run: (t, bytes) => {
      const native = t.native;
      const length = Math.max(1, bytes / 4);
      if (!native) return undefined;
      if (native.partialBuffer(length) === undefined) return t.plane === 'shm' ? undefined : nativeCall(native, new Float32Array(length).fill(0));
      return () => {
        const partial = native.partialBuffer(length)!;
        // As a layer computes it there: its owner writes every cache line first (timed with the call). Left alone, the
        // lines would stay where the last call's sum put them, and the all-reduce would move nothing between cores.
        for (let i = 0; i < length; i += 16) partial[i] = 0;
        return native.allReduce(partial);
      };
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

/** One measurement of a size, sampled once per repetition. */
interface Series {
  sample(): Promise<void>;
}

export async function runCommSweep(target: SweepTarget, settings: SweepSettings): Promise<SweepResults> {
  const repetitions = Math.max(1, Math.floor(settings.repetitions ?? DEFAULT_REPETITIONS));
  const perRepetition = settings.budgetSeconds / repetitions;
  const link: LinkFigure[] = [];
  const collectives: CollectiveFigure[] = [];
  for (const bytes of settings.sizes) {
    const series: Series[] = [];
    if (bytes >= 64 * 1024) series.push(linkSeries(target, bytes, perRepetition, link));
    for (const collective of COLLECTIVES) {
      const call = collective.run(target, bytes);
      if (call) series.push(await collectiveSeries(target, collective, call, bytes, perRepetition, collectives));
    }
    for (let repetition = 0; repetition < repetitions; repetition++) {
      // Every other repetition runs backwards, so no measurement always follows the same one.
      const order = repetition % 2 === 0 ? series : [...series].reverse();
      for (const one of order) await one.sample();
    }
  }
  collectives.sort((a, b) => collectiveOrder(a) - collectiveOrder(b) || a.bytes - b.bytes);
  return { ranks: target.communicator.size, plane: target.plane, repetitions, link, collectives, allReduceOverLink: linkRatios(link, collectives) };
}

function collectiveOrder(figure: CollectiveFigure): number {
  return COLLECTIVES.findIndex((c) => c.name === figure.collective && c.path === figure.path);
}

/** The link at `bytes`: a warm-up stream, then one timed one-way and one both-ways stream per repetition. */
function linkSeries(target: SweepTarget, bytes: number, seconds: number, figures: LinkFigure[]): Series {
  const probe = linkProbe(target, bytes, framesFor(bytes, seconds), (run) => timed(target, run));
  const figure: LinkFigure = { bytes, frames: probe.count, oneWayGBps: 0, perDirectionBothWaysGBps: 0, oneWayRepetitionsGBps: [], bothWaysRepetitionsGBps: [] };
  figures.push(figure);
  let warm = false;
  return {
    sample: async () => {
      if (!warm) await probe.oneWay();
      warm = true;
      figure.oneWayRepetitionsGBps.push((bytes * probe.count) / (await probe.oneWay()) / 1e9);
      figure.bothWaysRepetitionsGBps.push((bytes * probe.count) / (await probe.bothWays()) / 1e9);
      figure.oneWayGBps = median(figure.oneWayRepetitionsGBps);
      figure.perDirectionBothWaysGBps = median(figure.bothWaysRepetitionsGBps);
    },
  };
}

/** A collective at `bytes`: warmed up and its calls per repetition agreed now, one timed batch per repetition. */
async function collectiveSeries(target: SweepTarget, collective: Collective, call: Call, bytes: number, seconds: number, figures: CollectiveFigure[]): Promise<Series> {
  // A few calls first: the first ones page in buffers and run the JavaScript around the call before it is compiled.
  for (let i = 0; i < WARM_UP_CALLS; i++) await call();
  const iterations = await agreedIterations(target, call, seconds);
  const { name, path } = collective;
  const figure: CollectiveFigure = { collective: name, path, bytes, iterations, latencyUs: 0, algorithmGBps: 0, busGBps: 0, repetitionsUs: [] };
  figures.push(figure);
  return {
    sample: async () => {
      const elapsed = await timed(target, async () => {
        for (let i = 0; i < iterations; i++) await call();
      });
      figure.repetitionsUs.push((elapsed / iterations) * 1e6);
      figure.latencyUs = median(figure.repetitionsUs);
      figure.algorithmGBps = bytes / figure.latencyUs / 1e3;
      figure.busGBps = figure.algorithmGBps * collective.busFactor(target.communicator.size);
    },
  };
}

/** For each size with a link figure: the native all-reduces (else the Transport's) over the one-way stream. */
function linkRatios(link: readonly LinkFigure[], collectives: readonly CollectiveFigure[]): LinkRatio[] {
  const ratios: LinkRatio[] = [];
  const allReduces = collectives.filter((c) => c.collective.startsWith('all_reduce'));
  const hasNative = allReduces.some((c) => c.path === 'native');
  for (const figure of allReduces) {
    const l = link.find((one) => one.bytes === figure.bytes);
    if (!l || (hasNative && figure.path !== 'native')) continue;
    const factor = figure.busGBps / figure.algorithmGBps;
    const repetitionRatios = figure.repetitionsUs.map((us, i) => ((figure.bytes / us / 1e3) * factor) / l.oneWayRepetitionsGBps[i]);
    ratios.push({ collective: figure.collective, path: figure.path, bytes: figure.bytes, busGBps: figure.busGBps, oneWayGBps: l.oneWayGBps, ratio: figure.busGBps / l.oneWayGBps, repetitionRatios });
  }
  return ratios;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Seconds `run` takes, after a barrier, on the slowest rank. */
async function timed(target: SweepTarget, run: () => Promise<void> | void): Promise<number> {
  await barrier(target);
  const started = performance.now();
  await run();
  return (await slowest(target, performance.now() - started)) / 1000;
}

/** Calls that fill about the budget, as the slowest rank times two (every rank uses the same count). */
async function agreedIterations(target: SweepTarget, call: Call, budgetSeconds: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < 2; i++) await call();
  const once = (await slowest(target, performance.now() - started)) / 2;
  return Math.max(2, Math.min(50_000, Math.floor((budgetSeconds * 1000) / Math.max(once, 0.0005))));
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
