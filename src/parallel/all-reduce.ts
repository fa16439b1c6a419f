/**
 * The all-reduce of long vectors, in place: a reduce-scatter then an
 * all-gather, cut into segments so that a segment's sum is computed while
 * the later segments are still on the wire, both directions of every link
 * busy at once.
 *
 * Every receive is posted before any byte is sent, each naming where its
 * message goes (Transport.receiveInto): the parts this member sums go to a
 * scratch buffer the group keeps between calls, the gathered sums straight
 * into `values`. So the sockets write every byte once into its final place
 * and nothing is allocated per call — on this hardware a fresh buffer costs
 * several times a copy, because each new page faults.
 *
 * Message order per pair (the same on every member, so FIFO delivery
 * matches messages to receives): the scatter of segments 0..K-1, then the
 * gathered sums of segments 0..K-1. Each element is still summed by the one
 * canonical tree (reduction-tree.ts), so the result does not depend on the
 * segment size or the number of segments.
 */
import { chunkStart, treeSumInPlace } from './reduction-tree.js';
import { floatBytes } from './transport.js';

/** What the all-reduce needs of a group; peers are group indices. */
export interface GroupLink {
  readonly size: number;
  readonly index: number;
  send(peer: number, message: Uint8Array): Promise<void>;
  receiveInto(peer: number, into: Uint8Array): Promise<void>;
}

/** Floats per segment (1 MiB); each member sums 1/size of each segment. */
export const SEGMENT_FLOATS = 256 * 1024;

/** Floats of scratch `allReduceSegmented` needs for a vector of `length` floats. */
export function scratchFloats(length: number, size: number, index: number, segment = SEGMENT_FLOATS): number {
  let total = 0;
  for (let start = 0; start < length; start += segment) {
    const segmentLength = Math.min(segment, length - start);
    total += (size - 1) * (chunkStart(segmentLength, size, index + 1) - chunkStart(segmentLength, size, index));
  }
  return total;
}

/**
 * Replaces `values` on every member with the canonical-tree sum of all
 * members' `values`. `scratch` holds at least scratchFloats(...) floats
 * and is overwritten.
 */
export async function allReduceSegmented(group: GroupLink, values: Float32Array, scratch: Float32Array, segment = SEGMENT_FLOATS): Promise<void> {
  const { size, index } = group;
  const peers = Array.from({ length: size }, (_, i) => i).filter((i) => i !== index);
  /** chunks[k][i]: member i's chunk of segment k, a view of values. */
  const chunks: Float32Array[][] = [];
  for (let start = 0; start < values.length; start += segment) {
    const segmentValues = values.subarray(start, Math.min(start + segment, values.length));
    const length = segmentValues.length;
    chunks.push(Array.from({ length: size }, (_, i) => segmentValues.subarray(chunkStart(length, size, i), chunkStart(length, size, i + 1))));
  }
  /** parts[k][i]: member i's partial of this member's chunk of segment k (its own is in values, the rest in scratch). */
  let used = 0;
  const parts = chunks.map((chunk) =>
    chunk.map((own, i) => {
      if (i === index) return own;
      used += chunk[index].length;
      return scratch.subarray(used - chunk[index].length, used);
    }),
  );
  const scattered = parts.map((part) => Promise.all(peers.map((peer) => group.receiveInto(peer, floatBytes(part[peer])))));
  const gathered = chunks.flatMap((chunk) => peers.map((peer) => group.receiveInto(peer, floatBytes(chunk[peer]))));
  // A gathered sum overwrites a chunk this member scattered; it can only
  // arrive after its sender received that scatter, so the bytes are gone by then.
  const scatters = chunks.flatMap((chunk) => peers.map((peer) => group.send(peer, floatBytes(chunk[peer]))));
  const transfers = Promise.all([...scattered, ...gathered, ...scatters]);
  // A failure surfaces through the awaits below; this keeps it from also being unhandled.
  transfers.catch(() => undefined);
  const gathers: Promise<void>[] = [];
  try {
    for (let k = 0; k < chunks.length; k++) {
      await scattered[k];
      const sum = treeSumInPlace(parts[k], 0, size, index);
      for (const peer of peers) gathers.push(group.send(peer, floatBytes(sum)));
    }
    await Promise.all([transfers, ...gathers]);
  } catch (error) {
    void Promise.allSettled(gathers);
    throw error;
  }
}
