/**
 * Direct KV writes between two replicas on one host: the prefill engine
 * copies each layer's rows from its KV pool straight into the blocks the
 * decode engine reserved for them (process_vm_writev, the native addon's
 * remoteWrite), one copy where the shared-memory ring takes two, and made
 * while the rows are still in the prefill's cache; the decode engine only
 * hears that they are in. The ring's link carries the handshake:
 *
 *   decode → prefill  pools    (once per link: pid, each layer's pool addresses, a probe buffer), or none
 *   decode → prefill  target   (per transfer, when it opens: the reserved blocks)
 *   prefill → decode  rows     (a header per run written; no payload)
 *   decode → prefill  revoke   (the decode side gives a reservation up before it is complete)
 *   prefill → decode  revoked  (this engine writes no more rows of it)
 *
 * A reservation whose blocks a writer knows is given back only once the
 * writer has said `revoked`, or its process is gone (direct-holds.ts): a
 * writer stopped mid-transfer (SIGSTOP) that resumed later would otherwise
 * write into blocks another sequence holds by then.
 *
 * This file is the engine thread's part at both ends: describing the
 * decode pools, and on the prefill side the targets and the copies.
 */
import { loadNativeAddon } from '../backend/native/native-addon.js';
import type { KvPool } from '../backend/backend.js';
import type { KvDtype } from '../core/kv-dtype.js';
import { array, int, object, oneOf, str, tagged, type Schema } from '../core/schema.js';
import type { KvRowsHeader, TransferId } from '../engine/kv-messages.js';
import { sliceBytes } from '../format/slice-bytes.js';

/** Where a decode engine's KV pools are, for a writer on the same host. */
export interface DirectPools {
  pid: number;
  /** Per layer, the address of the key pool and of the value pool, each [numBlocks, blockSize, numKvHeads, headDim]. */
  keys: number[];
  values: number[];
  numBlocks: number;
  blockSize: number;
  numKvHeads: number;
  headDim: number;
  dtype: KvDtype;
  /** A buffer bandwidth probes write into (never read). */
  probe: { address: number; bytes: number };
}

/** What the two engines tell each other over a link's socket (through their event loops). */
export type DirectMessage =
  | { type: 'pools'; pools: DirectPools }
  | { type: 'target'; transfer: TransferId; blocks: number[]; positions: number }
  | { type: 'revoke'; transfer: TransferId }
  | { type: 'revoked'; transfer: TransferId }
  /** Instead of pools: this decode replica takes no direct writes (`--kv-direct off`, no addon, its pools on a mesh's ranks). */
  | { type: 'none' };

const ADDRESS = int(1, 2 ** 53 - 1);
const TRANSFER = str(64) as unknown as Schema<TransferId>;
/** Pools, blocks and positions as far as any model here goes (2^31 blocks, 4,096 layers). */
const COUNT = int(0, 2 ** 31 - 1);

/** A direct-write message from the other replica's process, checked (TESSERA_ERR_PROTOCOL names what is wrong). */
export const directMessageSchema: Schema<DirectMessage> = tagged<DirectMessage>({
  pools: object({
    type: oneOf('pools'),
    pools: object<DirectPools>({
      pid: int(1, 2 ** 31 - 1),
      keys: array(ADDRESS, 4096, 1),
      values: array(ADDRESS, 4096, 1),
      numBlocks: int(1, 2 ** 31 - 1),
      blockSize: int(1, 2 ** 20),
      numKvHeads: int(1, 2 ** 16),
      headDim: int(1, 2 ** 16),
      dtype: oneOf('f32', 'f16'),
      probe: object({ address: ADDRESS, bytes: COUNT }),
    }),
  }),
  target: object({ type: oneOf('target'), transfer: TRANSFER, blocks: array(COUNT, 2 ** 24), positions: COUNT }),
  revoke: object({ type: oneOf('revoke'), transfer: TRANSFER }),
  revoked: object({ type: oneOf('revoked'), transfer: TRANSFER }),
  none: object({ type: oneOf('none') }),
});

/** A run written directly, or a probe's frame: its header goes over the link, the bytes are already there. */
export type DirectFrameHeader = ({ type: 'rows' } & KvRowsHeader) | { type: 'probe'; probe: string; last: boolean };

/** The decode engine's pools, as a KvCache holds them. */
export interface DirectPoolSource {
  readonly keys: readonly (KvPool | undefined)[];
  readonly values: readonly (KvPool | undefined)[];
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly dtype: KvDtype;
}

/** The native calls this needs; undefined when the addon is not built (then no direct writes). */
export interface DirectCopier {
  remoteWrite(pid: number, parts: readonly Uint8Array[], ranges: Float64Array): number;
  addressOf(view: ArrayBufferView): number;
}

export function nativeCopier(): DirectCopier | undefined {
  const load = loadNativeAddon();
  if (!load.ok || typeof load.addon.remoteWrite !== 'function') return undefined;
  return load.addon;
}

/** Probes write into this much of the decode side's memory, frame after frame, as they read from as much here. */
export const DIRECT_PROBE_BYTES = 64 * 2 ** 20;

/**
 * [address, bytes] pairs in the decode pool at `base` for positions
 * [from, from + count) of a sequence whose blocks are `blocks`, KV heads
 * [heads.start, heads.start + heads.count) (default: all): one pair per
 * block touched when the run has every head (its rows are contiguous in a
 * block), else one per position (a tensor-parallel rank's share of each
 * row), in position order.
 */
export function directRanges(
  pools: Pick<DirectPools, 'blockSize' | 'numKvHeads' | 'headDim' | 'dtype' | 'numBlocks'>,
  base: number,
  blocks: readonly number[],
  from: number,
  count: number,
  heads = { start: 0, count: pools.numKvHeads },
): number[] {
  const headBytes = pools.headDim * (pools.dtype === 'f16' ? 2 : 4);
  const rowBytes = pools.numKvHeads * headBytes;
  const whole = heads.start === 0 && heads.count === pools.numKvHeads;
  const ranges: number[] = [];
  for (let position = from; position < from + count; ) {
    const logical = Math.floor(position / pools.blockSize);
    const block = blocks[logical];
    if (block === undefined || block < 0 || block >= pools.numBlocks) throw new Error(`position ${position} has no reserved block in the decode pool`);
    const within = position % pools.blockSize;
    const run = whole ? Math.min(pools.blockSize - within, from + count - position) : 1;
    const at = base + (block * pools.blockSize + within) * rowBytes + heads.start * headBytes;
    ranges.push(at, whole ? run * rowBytes : heads.count * headBytes);
    position += run;
  }
  return ranges;
}

/**
 * The pools of `cache` for a writer (undefined when a layer has none here:
 * a pipeline stage or a mesh driver), and the probe buffer they name, which
 * the caller keeps for as long as it offers them: a writer's copy into
 * memory given back to the allocator would fail (EFAULT) or, worse, land
 * in whatever took the address next.
 */
export function describePools(cache: DirectPoolSource, numLayers: number, copier: DirectCopier): { pools: DirectPools; probe: Uint8Array } | undefined {
  const keys: number[] = [];
  const values: number[] = [];
  for (let layer = 0; layer < numLayers; layer++) {
    const [key, value] = [cache.keys[layer], cache.values[layer]];
    if (!key || !value) return undefined;
    keys.push(copier.addressOf(key.data));
    values.push(copier.addressOf(value.data));
  }
  const first = cache.keys[0]!;
  // Touched once, so a probe times copies, not page faults.
  const probe = sliceBytes(DIRECT_PROBE_BYTES).fill(0);
  const pools = { pid: process.pid, keys, values, numBlocks: cache.numBlocks, blockSize: cache.blockSize, numKvHeads: first.numKvHeads, headDim: first.headDim, dtype: cache.dtype, probe: { address: copier.addressOf(probe), bytes: probe.byteLength } };
  return { pools, probe };
}

interface Target {
  ring: string;
  blocks: number[];
  positions: number;
}

/** The prefill engine's direct writes: the decode pools of each ring's link, and each transfer's blocks. */
export class DirectWriter {
  private readonly pools = new Map<string, DirectPools>();
  private readonly targets = new Map<TransferId, Target>();
  /** Where the next probe frame goes in each ring's decode probe buffer. */
  private readonly probeAt = new Map<string, number>();

  constructor(private readonly copier: DirectCopier) {}

  /** A message from the decode engine of `ring`'s link; the answer to send back, if any. */
  apply(ring: string, message: DirectMessage): DirectMessage | undefined {
    switch (message.type) {
      case 'pools':
        return void this.pools.set(ring, message.pools);
      case 'target':
        return void this.targets.set(message.transfer, { ring, blocks: message.blocks, positions: message.positions });
      case 'revoke':
        this.targets.delete(message.transfer);
        return { type: 'revoked', transfer: message.transfer };
      case 'revoked':
      case 'none':
        return undefined;
    }
  }

  /** The link of `ring` closed: its pools and targets are gone. */
  close(ring: string): void {
    this.pools.delete(ring);
    this.probeAt.delete(ring);
    for (const [transfer, target] of this.targets) if (target.ring === ring) this.targets.delete(transfer);
  }

  /** The transfer is over here (handed off, ended or failed): no more rows of it go anywhere. */
  end(transfer: TransferId): void {
    this.targets.delete(transfer);
  }

  /**
   * Writes a run (keys parts, then values parts: views on this pool, or a
   * mesh's run of its heads) into the decode blocks of its transfer; the ms
   * it took, or undefined when it cannot go directly (no target or pools,
   * heads or a dtype the pools do not have, the kernel refused): then it
   * takes the ring.
   */
  write(header: KvRowsHeader, parts: readonly Uint8Array[], ring: string): number | undefined {
    const target = this.targets.get(header.transfer);
    const pools = this.pools.get(ring);
    if (!target || target.ring !== ring || !pools) return undefined;
    if (header.headStart < 0 || header.headCount < 1 || header.headStart + header.headCount > pools.numKvHeads || header.dtype !== pools.dtype || header.layer >= pools.keys.length) return undefined;
    if (header.from + header.count > target.positions) return undefined;
    const heads = { start: header.headStart, count: header.headCount };
    let ranges: Float64Array;
    try {
      const keys = directRanges(pools, pools.keys[header.layer], target.blocks, header.from, header.count, heads);
      ranges = Float64Array.from([...keys, ...directRanges(pools, pools.values[header.layer], target.blocks, header.from, header.count, heads)]);
    } catch {
      return undefined; // a target without a block for every row: the ring instead
    }
    return this.copy(ring, pools, parts, ranges);
  }

  /** Whether the link of `ring` has offered its pools (runs and probes can go there directly). */
  has(ring: string): boolean {
    return this.pools.has(ring);
  }

  /** One probe frame, `source` into the next place of the decode side's probe buffer; ms, or undefined when it cannot. */
  probe(ring: string, source: Uint8Array): number | undefined {
    const pools = this.pools.get(ring);
    if (!pools || source.byteLength > pools.probe.bytes) return undefined;
    let at = this.probeAt.get(ring) ?? 0;
    if (at + source.byteLength > pools.probe.bytes) at = 0;
    this.probeAt.set(ring, at + source.byteLength);
    return this.copy(ring, pools, [source], Float64Array.of(pools.probe.address + at, source.byteLength));
  }

  private copy(ring: string, pools: DirectPools, parts: readonly Uint8Array[], ranges: Float64Array): number | undefined {
    const started = performance.now();
    try {
      this.copier.remoteWrite(pools.pid, parts, ranges);
    } catch {
      // Not allowed (another user, no ptrace rights) or the process is gone: this link keeps to its ring from now on.
      this.close(ring);
      return undefined;
    }
    return performance.now() - started;
  }
}
