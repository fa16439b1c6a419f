/**
 * Collectives over a Transport for a group of ranks. All-reduce finishes the
 * canonical reduction tree of DESIGN §4 across the group: the partials of
 * ranks [lo, hi) combine as sum([lo, mid)) + sum([mid, hi)) with
 * mid = lo + floor((hi - lo) / 2), every partial rounded to float32 — for
 * 2 ranks fround(p0 + p1), for 4 fround(fround(p0 + p1) + fround(p2 + p3)).
 * A row-parallel shard that owns the matching subtree of leaves therefore
 * gets the unsplit result bit for bit, whatever the group size.
 *
 * Every rank of the group calls the same collectives in the same order
 * (SPMD); per-pair FIFO delivery then matches the messages up.
 */
import { check } from '../core/errors.js';
import { asFloats, floatBytes, type Transport } from './transport.js';

export class Communicator {
  /** This rank's index within the group. */
  readonly index: number;

  /** `ranks` are the transport ranks of the group, in group order. */
  constructor(
    readonly transport: Transport,
    readonly ranks: readonly number[] = Array.from({ length: transport.size }, (_, i) => i),
  ) {
    this.index = ranks.indexOf(transport.rank);
    check(this.index >= 0, 'TESSERA_ERR_INVALID_ARGUMENT', `rank ${transport.rank} is not in the group [${ranks.join(', ')}]`);
  }

  get size(): number {
    return this.ranks.length;
  }

  /** Sends to the group member `peer` (a group index). */
  send(peer: number, message: Uint8Array): Promise<void> {
    return this.transport.send(this.ranks[peer], message);
  }

  receive(peer: number): Promise<Uint8Array> {
    return this.transport.receive(this.ranks[peer]);
  }

  /** The canonical-tree sum of every member's values, on every member. */
  async allReduce(values: Float32Array): Promise<Float32Array> {
    if (this.size === 1) return values;
    // Short vectors (decode activations) in one round: every member gets every
    // partial and sums the same tree itself; latency, not bytes, dominates there.
    if (values.length <= ONE_ROUND_FLOATS) return treeSum((await this.allGather(floatBytes(values))).map(asFloats), 0, this.size);
    if (values.length <= SEGMENT_FLOATS) return this.allReduceSegment(values);
    return this.allReducePipelined(values);
  }

  /**
   * Long vectors in segments, each a reduce-scatter then an all-gather, two
   * segments deep: segment k+1's reduce-scatter is on the wire while segment
   * k is summed and gathered. Each element's sum is still the one tree. The
   * order of sends and receives is fixed (not timing-dependent) and the same
   * on every member, so per-pair FIFO delivery matches them: sends go
   * RS0, RS1, AG0, RS2, AG1, …, and receives are taken in that order.
   */
  private async allReducePipelined(values: Float32Array): Promise<Float32Array> {
    const { size, index } = this;
    const out = new Float32Array(values.length);
    const starts: number[] = [];
    for (let start = 0; start < values.length; start += SEGMENT_FLOATS) starts.push(start);
    const segmentLength = (k: number): number => Math.min(SEGMENT_FLOATS, values.length - starts[k]);
    /** Where member i's chunk of segment k starts in the whole vector. */
    const at = (k: number, i: number): number => starts[k] + chunkStart(segmentLength(k), size, i);
    const sends: Promise<void>[] = [];
    const sendToPeers = (bytesFor: (peer: number) => Uint8Array): void => {
      for (let peer = 0; peer < size; peer++) if (peer !== index) sends.push(this.send(peer, bytesFor(peer)));
    };
    const scatter = (k: number): void => sendToPeers((peer) => floatBytes(values.subarray(at(k, peer), at(k, peer + 1))));
    const receiveParts = async (k: number): Promise<Float32Array[]> => {
      const parts: Float32Array[] = [];
      for (let peer = 0; peer < size; peer++) parts.push(peer === index ? values.subarray(at(k, index), at(k, index + 1)) : asFloats(await this.receive(peer)));
      return parts;
    };
    const reduceAndShare = (k: number, parts: Float32Array[]): void => {
      const sum = treeSum(parts, 0, size);
      out.set(sum, at(k, index));
      sendToPeers(() => floatBytes(sum));
    };
    const gather = async (k: number): Promise<void> => {
      for (let peer = 0; peer < size; peer++) if (peer !== index) out.set(asFloats(await this.receive(peer)), at(k, peer));
    };
    const count = starts.length;
    scatter(0);
    scatter(1);
    reduceAndShare(0, await receiveParts(0));
    for (let k = 1; k < count; k++) {
      const parts = await receiveParts(k);
      await gather(k - 1);
      if (k + 1 < count) scatter(k + 1);
      reduceAndShare(k, parts);
    }
    await gather(count - 1);
    await Promise.all(sends);
    return out;
  }

  private async allReduceSegment(values: Float32Array): Promise<Float32Array> {
    const mine = await this.reduceScatter(values);
    const chunks = await this.allGather(floatBytes(mine));
    const out = new Float32Array(values.length);
    chunks.forEach((chunk, i) => out.set(asFloats(chunk), chunkStart(values.length, this.size, i)));
    return out;
  }

  /**
   * Member i gets elements [chunkStart(i), chunkStart(i + 1)) of the
   * canonical-tree sum: every member sends each chunk straight to its owner.
   */
  async reduceScatter(values: Float32Array): Promise<Float32Array> {
    const { size, index } = this;
    const length = values.length;
    const chunk = (i: number): Float32Array => values.subarray(chunkStart(length, size, i), chunkStart(length, size, i + 1));
    const sends: Promise<void>[] = [];
    for (let peer = 0; peer < size; peer++) if (peer !== index) sends.push(this.send(peer, floatBytes(chunk(peer))));
    const parts: Float32Array[] = [];
    for (let peer = 0; peer < size; peer++) parts.push(peer === index ? chunk(index) : asFloats(await this.receive(peer)));
    await Promise.all(sends);
    return treeSum(parts, 0, size);
  }

  /** Every member's bytes, in group order, on every member. */
  async allGather(mine: Uint8Array): Promise<Uint8Array[]> {
    const { size, index } = this;
    const sends: Promise<void>[] = [];
    for (let peer = 0; peer < size; peer++) if (peer !== index) sends.push(this.send(peer, mine));
    const parts: Uint8Array[] = [];
    for (let peer = 0; peer < size; peer++) parts.push(peer === index ? mine : await this.receive(peer));
    await Promise.all(sends);
    return parts;
  }

  /** The root's bytes on every member. */
  async broadcast(bytes: Uint8Array, root: number): Promise<Uint8Array> {
    if (this.index !== root) return this.receive(root);
    await Promise.all(this.ranks.map((_, peer) => (peer === root ? undefined : this.send(peer, bytes))));
    return bytes;
  }

  /** parts[j] goes to member j; returns what each member sent here, in group order. */
  async allToAll(parts: readonly Uint8Array[]): Promise<Uint8Array[]> {
    const { size, index } = this;
    check(parts.length === size, 'TESSERA_ERR_INVALID_ARGUMENT', `all-to-all needs one part per member (${size}), got ${parts.length}`);
    const sends: Promise<void>[] = [];
    for (let peer = 0; peer < size; peer++) if (peer !== index) sends.push(this.send(peer, parts[peer]));
    const received: Uint8Array[] = [];
    for (let peer = 0; peer < size; peer++) received.push(peer === index ? parts[index] : await this.receive(peer));
    await Promise.all(sends);
    return received;
  }
}

/** Longest all-reduce done in one round (64 KiB). */
const ONE_ROUND_FLOATS = 16 * 1024;

/** Floats per all-reduce segment (1 MiB). */
const SEGMENT_FLOATS = 256 * 1024;

/** First element of chunk i when `length` elements are cut into `count` near-equal chunks. */
export function chunkStart(length: number, count: number, i: number): number {
  return Math.floor((length * i) / count);
}

/** Elementwise canonical-tree sum of parts [lo, hi), each partial rounded to float32. */
export function treeSum(parts: readonly Float32Array[], lo: number, hi: number): Float32Array {
  if (hi - lo === 1) return parts[lo];
  const mid = lo + Math.floor((hi - lo) / 2);
  const left = treeSum(parts, lo, mid);
  const right = treeSum(parts, mid, hi);
  /** A Float32Array store rounds each sum to float32, as Math.fround would. */
  const out = new Float32Array(left.length);
  for (let i = 0; i < out.length; i++) out[i] = left[i] + right[i];
  return out;
}
