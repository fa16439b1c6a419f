/**
 * Finding and loading the compiled addon (native/build/Release/
 * tessera_native.node, built by `npm install` through native/install.mjs),
 * and the typed shape of what it exports. Loading never throws: a missing or
 * broken addon is a reason string, so callers can fall back to the reference
 * backend.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** An opaque handle owned by the addon (a weight or a context); freed by GC. */
export interface NativeHandle {
  readonly __nativeHandle: never;
}

export interface NativeContext {
  readonly isa: string;
  readonly threads: number;
  readonly context: NativeHandle;
}

/** A KV pool as the addon takes it: float32 values, or IEEE half bits for an f16 pool. */
export type NativeKvData = Float32Array | Uint16Array;

/** The addon's exports (native/src/addon.cc); shapes are checked by the caller. */
export interface NativeAddon {
  info(): { physicalCores: number; supportedIsas: string[]; tileFileVersion: number };
  createContext(threads: number, isa: string): NativeContext;
  /** `pack`: q8_0/q4_0 go into 16-row tiles (faster decode; the bits do not change). */
  loadWeight(context: NativeHandle, dtype: number, rows: number, cols: number, bytes: Uint8Array, pack: boolean): NativeHandle;
  /** `tileFile`: where packed tiles are mapped from when it holds them, and saved to otherwise (native/src/tile-file.h). */
  mapWeight(context: NativeHandle, dtype: number, rows: number, cols: number, path: string, byteOffset: number, pack: boolean, tileFile?: string): NativeHandle;
  weightLayout(weight: NativeHandle): 'stored' | 'tiles' | 'saved-tiles';
  // Ops that produce an array fill `out`, allocated by the caller (cheaper from JS than from C++), and return it.
  readRows(context: NativeHandle, weight: NativeHandle, rowStart: number, rowEnd: number, out: Float32Array): Float32Array;
  embed(context: NativeHandle, weight: NativeHandle, ids: Int32Array, out: Float32Array): Float32Array;
  matmul(
    context: NativeHandle,
    weight: NativeHandle,
    x: Float32Array,
    numTokens: number,
    floatActivations: boolean,
    out: Float32Array,
  ): Float32Array;
  matmulMany(
    context: NativeHandle,
    weights: NativeHandle[],
    x: Float32Array,
    numTokens: number,
    floatActivations: boolean,
    outs: Float32Array[],
  ): Float32Array[];
  rmsNorm(context: NativeHandle, x: Float32Array, weight: NativeHandle, numRows: number, eps: number, out: Float32Array): Float32Array;
  addBias(context: NativeHandle, x: Float32Array, bias: NativeHandle, numRows: number): void;
  rope(
    context: NativeHandle,
    x: Float32Array,
    positions: Int32Array,
    numHeads: number,
    headDim: number,
    ropeDims: number,
    halves: boolean,
    inverseFrequencies: Float32Array,
  ): void;
  attention(
    context: NativeHandle,
    query: Float32Array,
    keys: NativeKvData,
    values: NativeKvData,
    blockSize: number,
    numKvHeads: number,
    blockTable: Int32Array,
    positions: Int32Array,
    numHeads: number,
    headDim: number,
    scale: number,
    out: Float32Array,
  ): Float32Array;
  /** `segments` [numSegments, 4]: first row, row count, offset and length of its table in `blockTables`. */
  attentionBatch(
    context: NativeHandle,
    query: Float32Array,
    keys: NativeKvData,
    values: NativeKvData,
    blockSize: number,
    numKvHeads: number,
    numHeads: number,
    headDim: number,
    scale: number,
    segments: Int32Array,
    positions: Int32Array,
    blockTables: Int32Array,
    out: Float32Array,
  ): Float32Array;
  siluMul(context: NativeHandle, gate: Float32Array, up: Float32Array, out: Float32Array): Float32Array;
  writeKv(
    context: NativeHandle,
    pool: NativeKvData,
    blockSize: number,
    rowSize: number,
    blockTable: Int32Array,
    positions: Int32Array,
    values: Float32Array,
  ): void;
  /** Segments as in attentionBatch. */
  writeKvBatch(
    context: NativeHandle,
    keyPool: NativeKvData,
    valuePool: NativeKvData,
    blockSize: number,
    rowSize: number,
    segments: Int32Array,
    positions: Int32Array,
    blockTables: Int32Array,
    keys: Float32Array,
    values: Float32Array,
  ): void;
  addInPlace(context: NativeHandle, a: Float32Array, b: Float32Array): void;
  /** GB/s of a STREAM triad over three arrays of `bytesPerArray` on the context's threads. */
  memoryBandwidth(context: NativeHandle, bytesPerArray: number, repeats: number): number;
  /** A byte array on 2 MiB pages (fewer page faults for large, long-lived buffers); its contents are unspecified. */
  hugeBytes(length: number): Uint8Array;
  /** `length` bytes of the open file `fd`, mapped shared (a copy in or out is a memcpy); unmapped when collected. */
  mapShared(fd: number, length: number, writable: boolean): Uint8Array;
  /** Copies `parts` (end to end) into process `pid`'s memory at `ranges` ([address, bytes] pairs) with one process_vm_writev per 1,024 pieces; bytes written. Throws (with `errno`) when the kernel refuses. */
  remoteWrite(pid: number, parts: readonly Uint8Array[], ranges: Float64Array): number;
  /** Where `view`'s first byte is in this process's memory. */
  addressOf(view: ArrayBufferView): number;
  /** The process at the other end of connected Unix domain socket `fd` (SO_PEERCRED); undefined where the kernel does not say. */
  peerPid(fd: number): number | undefined;
}

export type AddonLoad = { ok: true; addon: NativeAddon; path: string } | { ok: false; reason: string };

/** Where the addon is: $TESSERA_NATIVE_ADDON when set, else the package's own build folder. */
function candidatePaths(): string[] {
  const override = process.env.TESSERA_NATIVE_ADDON;
  if (override) return [resolve(override)];
  // dist/backend/native → package root
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  return [join(root, 'native', 'build', 'Release', 'tessera_native.node')];
}

let cached: AddonLoad | undefined;

/** Loads the addon once per process; the result (or the reason it failed) is cached. */
export function loadNativeAddon(): AddonLoad {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const path of candidatePaths()) {
    if (!existsSync(path)) {
      tried.push(`${path} does not exist`);
      continue;
    }
    try {
      cached = { ok: true, addon: require(path) as NativeAddon, path };
      return cached;
    } catch (error) {
      tried.push(`${path} failed to load: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  cached = { ok: false, reason: tried.join('; ') };
  return cached;
}

/** How to get the native backend, for messages. */
export const NATIVE_BUILD_HINT =
  'build it with `npm run build:native` in the tessera package (it needs Python 3 and a C++17 compiler: g++ or clang; on macOS the Xcode command line tools)';
