/**
 * The typed binding of the addon's transports and collectives
 * (native/src/comm/): shared-memory segments and their rings, native socket
 * meshes, groups that run collectives synchronously on the calling thread,
 * and the process-wide abort. Everything here is optional: without the
 * addon, ranks fall back to the TypeScript collectives over sockets.
 */
import { loadNativeAddon, type NativeHandle } from '../backend/native/native-addon.js';
import { TesseraError, isTesseraError, type ErrorCode } from '../core/errors.js';

/** The addon's comm exports (native/src/comm/comm-bindings.cc). */
export interface NativeComm {
  commShmCreate(path: string, rank: number, size: number, ringBytes: number, areaBytes: number): NativeHandle;
  commShmAttach(mesh: NativeHandle, peer: number, path: string): void;
  /** Bytes of bytes[offset, offset + length) written into this rank's ring at `peer` now. */
  commShmRingWrite(mesh: NativeHandle, peer: number, bytes: Uint8Array, offset: number, length: number): number;
  /** Bytes read from `peer`'s ring into into[offset, offset + length) now. */
  commShmRingRead(mesh: NativeHandle, peer: number, into: Uint8Array, offset: number, length: number): number;
  /** Why `peer` is gone, or '' while it lives. */
  commShmPeerGone(mesh: NativeHandle, peer: number): string;
  commShmDoorbell(mesh: NativeHandle): number;
  /** Resolves when the doorbell moves from `seen`, or after timeoutMs (a libuv pool thread sleeps). */
  commShmWait(mesh: NativeHandle, seen: number, timeoutMs: number): Promise<void>;
  commShmClose(mesh: NativeHandle): void;
  /** Unlinks segments in `dir` whose process is gone. */
  commShmSweep(dir: string): number;
  commSocketCreate(rank: number, size: number): NativeHandle;
  /** The TCP port, or the Unix socket path. */
  commSocketListen(mesh: NativeHandle, unixDomain: boolean, hostOrPath: string): string;
  commSocketConnect(mesh: NativeHandle, endpoints: string[], token: string, timeoutMs: number): void;
  commSocketClose(mesh: NativeHandle): void;
  commSetStall(mesh: NativeHandle, ms: number): void;
  /** The plan generation the mesh serves: abortCollectives(generation) ends its waits. */
  commSetTag(mesh: NativeHandle, generation: number): void;
  commStream(mesh: NativeHandle, peer: number, frame: Uint8Array, landing: Uint8Array, count: number, sending: boolean, receiving: boolean): void;
  commGroup(mesh: NativeHandle, members: Int32Array, slot: number): NativeHandle;
  commAllReduce(group: NativeHandle, values: Float32Array): void;
  commAllGather(group: NativeHandle, mine: Uint8Array): Uint8Array[];
  commAllGatherColumns(group: NativeHandle, slice: Float32Array, rows: number): Float32Array;
  /** parts[j] goes to member j; what each member sent here, in member order. */
  commAllToAll(group: NativeHandle, parts: Uint8Array[]): Uint8Array[];
  /** The two halves of this rank's shared area (shm groups), else undefined. */
  commAreas(group: NativeHandle): [Float32Array, Float32Array] | undefined;
  commNextHalf(group: NativeHandle): number;
  /** Fills out[0..4): calls, total ns, wait ns, bytes sent, and out[4] (when there): ns computing inside collectives. */
  commStats(group: NativeHandle, out: Float64Array): void;
  /**
   * Shared rows (two members on shared memory): out [numTokens, fullRows] = x·Wᵀ, or silu(x·gateᵀ)·(x·upᵀ)
   * with two weights; each weight holds rows [heldBegin, heldBegin + rows) (native/src/comm/row-sharing.cc).
   */
  shareRows(group: NativeHandle, context: NativeHandle, weights: NativeHandle[], x: Float32Array, numTokens: number, heldBegin: number, fullRows: number, out: Float32Array, floatActivations: boolean): Float32Array;
  /** Several projections' rows as one concatenation (weights: null where none is held here); outs[i] [numTokens, fullRows[i]]. */
  shareRowsConcatenated(group: NativeHandle, context: NativeHandle, weights: (NativeHandle | null)[], x: Float32Array, numTokens: number, heldBegins: number[], fullRows: number[], outs: Float32Array[], floatActivations: boolean): Float32Array[];
  /** Whether an abort reached the mesh: abortCollectives() after it was made, or abortCollectives(g) with g ≥ its tag. */
  commAborted(mesh: NativeHandle): boolean;
  abortCollectives(generation?: number): void;
}

/** The addon's comm functions, or undefined when the addon is missing or predates them. */
export function loadNativeComm(): NativeComm | undefined {
  if (process.env.TESSERA_NATIVE_COLLECTIVES === '0') return undefined;
  const load = loadNativeAddon();
  if (!load.ok) return undefined;
  const addon = load.addon as unknown as Partial<NativeComm>;
  return typeof addon.commGroup === 'function' ? (addon as NativeComm) : undefined;
}

/**
 * Ends every blocking native wait of the meshes made so far in this process
 * (collectives and shm transports) with TESSERA_ERR_RANK_LOST, within about
 * a millisecond. Callable from any thread, e.g. a worker_thread that noticed a
 * peer stopped answering heartbeats; meshes made afterwards are unaffected.
 * With `generation`: only the meshes tagged (commSetTag) with a plan
 * generation up to it, made before or after the call, so a late abort of a
 * lost plan never reaches the plan that replaced it.
 */
export function abortCollectives(generation?: number): void {
  const load = loadNativeAddon();
  if (load.ok) (load.addon as unknown as Partial<NativeComm>).abortCollectives?.(generation);
}

/** Runs a native call, turning its coded JS errors into TesseraErrors. */
export function nativeCall<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw asTesseraError(error);
  }
}

export function asTesseraError(error: unknown): Error {
  if (isTesseraError(error)) return error;
  if (error instanceof Error) {
    const code = (error as Error & { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('TESSERA_ERR_')) return new TesseraError(code as ErrorCode, error.message);
    return error;
  }
  return new TesseraError('TESSERA_ERR_INTERNAL', String(error));
}
