/**
 * The raw link of `tessera bench comm`: ranks 0 and 1 stream `bytes`-sized
 * frames, one way (0 → 1) and both ways at once; the other ranks wait.
 * Natively: the addon's blocking stream through the plane the collectives
 * use. Otherwise frames take the TypeScript collectives' own path: sent
 * whole, received straight into a buffer allocated (and paged in) once
 * (receiveInto). Each call of a LinkProbe is one timed repetition, so the
 * sweep can interleave them with the collectives it compares them to.
 */
import type { SweepTarget } from './comm-sweep.js';

export interface LinkProbe {
  /** Frames per repetition. */
  readonly count: number;
  /** Seconds (slowest rank) to stream `count` frames rank 0 → 1. */
  oneWay(): Promise<number>;
  /** Seconds (slowest rank) to stream `count` frames each way at once. */
  bothWays(): Promise<number>;
}

/** Frames a repetition streams: about its budget at a few GB/s, at least 4 and at most 256. */
export function framesFor(bytes: number, seconds: number): number {
  return Math.max(4, Math.min(256, Math.floor((seconds * 2e9) / Math.max(bytes, 1))));
}

export function linkProbe(target: SweepTarget, bytes: number, count: number, time: (run: () => Promise<void> | void) => Promise<number>): LinkProbe {
  const communicator = target.communicator;
  const index = communicator.index;
  const frame = touched(bytes);
  const landing = touched(bytes);
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
  return { count, oneWay: () => time(oneWay), bothWays: () => time(bothWays) };
}

/**
 * A buffer whose pages are really there: a fresh one maps every page to the
 * kernel's one zero page until written, which makes reading it (sending it)
 * unrealistically cheap and writing it (receiving into it) fault in the
 * timed loop.
 */
export function touched(bytes: number): Uint8Array {
  return new Uint8Array(bytes).fill(0);
}
