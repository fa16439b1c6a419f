/**
 * Collectives over a Transport for a group of ranks. All-reduce finishes the
 * canonical reduction tree of DESIGN §4 across the group (reduction-tree.ts):
 * for 2 ranks fround(p0 + p1), for 4 fround(fround(p0 + p1) + fround(p2 + p3)).
 * A row-parallel shard that owns the matching subtree of leaves therefore
 * gets the unsplit result bit for bit, whatever the group size.
 *
 * Every rank of the group calls the same collectives in the same order
 * (SPMD); per-pair FIFO delivery then matches the messages up.
 */
import { check } from '../core/errors.js';
import { allReduceSegmented, scratchFloats } from './all-reduce.js';
import { chunkStart, treeSum } from './reduction-tree.js';
import { asFloats, floatBytes, type Transport } from './transport.js';

export { chunkStart, treeSum } from './reduction-tree.js';

export class Communicator {
  /** This rank's index within the group. */
  readonly index: number;
  /** The all-reduce's receive buffer, kept between calls: a fresh one would page-fault on every call. */
  private scratch: Float32Array | undefined;

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

  /** Writes the next message from `peer` into `into` (its length must be the message's). */
  receiveInto(peer: number, into: Uint8Array): Promise<void> {
    return this.transport.receiveInto(this.ranks[peer], into);
  }

  /**
   * The canonical-tree sum of every member's values, on every member, in
   * place: `values` holds the sum afterwards and is returned (as with one
   * member, where there is nothing to add).
   */
  async allReduce(values: Float32Array): Promise<Float32Array> {
    if (this.size === 1) return values;
    // Short vectors (decode activations) in one round: every member gets every
    // partial and sums the same tree itself; latency, not bytes, dominates there.
    if (values.length <= ONE_ROUND_FLOATS) {
      values.set(treeSum((await this.allGather(floatBytes(values))).map(asFloats), 0, this.size));
      return values;
    }
    const needed = scratchFloats(values.length, this.size, this.index);
    // Taken while in use, so overlapping calls (not SPMD-safe anyway) cannot share it.
    const scratch = this.scratch !== undefined && this.scratch.length >= needed ? this.scratch : new Float32Array(needed);
    this.scratch = undefined;
    await allReduceSegmented(this, values, scratch);
    this.scratch = scratch;
    return values;
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
