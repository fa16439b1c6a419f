/**
 * The native CPU backend: the Backend interface over the C++ addon in
 * native/. Every call is synchronous (run it off the API event loop); the
 * addon splits output rows, heads or tokens over its own thread pool.
 *
 * Quantized weights dot against activations quantized to 8-bit blocks, as
 * llama.cpp does (exact integer dots, one float leaf per block): results stay
 * bit-identical across batch sizes and thread counts but differ from the
 * float product by the activation rounding. `floatActivations: true` dots in
 * float32 instead (within float rounding of the exact product, slower prefill).
 */
import { gatherRowsOnHost } from '../gather-rows.js';
import type { AttentionArgs, AttentionBatchArgs, Backend, KvPool, KvSegment, KvWriteBatchArgs, RopeArgs, Weight } from '../backend.js';
import type { DType } from '../../core/dtype.js';
import { TesseraError, check } from '../../core/errors.js';
import { batchRows, checkKvSegments, checkSamePools, kvSlotOffset, zeroRowsOutsideSegments } from '../kv-segments.js';
import { checkBiasRows, checkRopeArgs } from '../pointwise-args.js';
import { checkMatmulMany, checkOutLength } from '../out-buffer.js';
import { NATIVE_BUILD_HINT, loadNativeAddon, type NativeAddon, type NativeHandle } from './native-addon.js';
import { DTYPE_CODES, NativeWeight, asNativeWeight, checkWeightShape } from './native-weight.js';
import { TileCache } from './tile-cache.js';

export type NativeIsa = 'auto' | 'avx512' | 'avx2' | 'neon' | 'scalar';

export interface NativeBackendOptions {
  /** Compute threads including the caller; default: physical cores. */
  threads?: number;
  /** Kernel variant; default: the best this CPU supports. */
  isa?: NativeIsa;
  /** Dot quantized weights in float32 instead of against 8-bit activations. */
  floatActivations?: boolean;
  /**
   * Repack q8_0/q4_0 weights into 16-row tiles for the VNNI kernels (default
   * true; only done where the kernel variant has them): several times less
   * decode compute, same bits. Otherwise a weight from loadWeightFromFile
   * stays memory-mapped from the file (no copy).
   */
  repack?: boolean;
  /**
   * Folder where packed tiles are saved and mapped from on later loads
   * (tile-cache.ts), or such a cache; default: $TESSERA_TILE_CACHE, else none.
   */
  tileCache?: string | TileCache;
}

export class NativeBackend implements Backend {
  readonly name = 'native';
  /** The kernel variant in use. */
  readonly isa: string;
  readonly threads: number;
  readonly floatActivations: boolean;
  readonly repack: boolean;
  readonly tileCache: TileCache | undefined;
  private readonly addon: NativeAddon;
  private readonly context: NativeHandle;

  /** The addon context and activation mode, for ops run outside this interface (shared rows: src/parallel/native-group.ts). */
  rowContext(): { context: NativeHandle; floatActivations: boolean } {
    return { context: this.context, floatActivations: this.floatActivations };
  }

  constructor(options: NativeBackendOptions = {}) {
    const load = loadNativeAddon();
    if (!load.ok) {
      throw new TesseraError('TESSERA_ERR_BACKEND_UNAVAILABLE', `the native backend is not available (${load.reason}); ${NATIVE_BUILD_HINT}`);
    }
    const threads = options.threads ?? 0;
    check(
      Number.isInteger(threads) && threads >= 0 && threads <= 1024,
      'TESSERA_ERR_INVALID_ARGUMENT',
      `threads must be a whole number from 1 to 1024 (or 0 for the physical core count), got ${threads}`,
    );
    this.addon = load.addon;
    let created;
    try {
      created = this.addon.createContext(threads, options.isa ?? 'auto');
    } catch (error) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `${(error as Error).message}; pick another isa or leave it on auto`);
    }
    this.context = created.context;
    this.isa = created.isa;
    this.threads = created.threads;
    this.floatActivations = options.floatActivations ?? false;
    this.repack = options.repack ?? true;
    const tileCache = options.tileCache ?? process.env.TESSERA_TILE_CACHE;
    this.tileCache = typeof tileCache === 'string' && tileCache !== '' ? new TileCache(tileCache, this.addon.info().tileFileVersion) : tileCache || undefined;
  }

  /** Kernel variants this CPU can run, best first, and its physical core count. */
  static describeCpu(): { physicalCores: number; supportedIsas: string[] } | undefined {
    const load = loadNativeAddon();
    return load.ok ? load.addon.info() : undefined;
  }

  /** This machine's memory bandwidth in GB/s (STREAM triad on this backend's threads), for benchmarks. */
  measureMemoryBandwidth(bytesPerArray = 256 * 1024 * 1024, repeats = 5): number {
    return this.addon.memoryBandwidth(this.context, bytesPerArray, repeats);
  }

  loadWeight(dtype: DType, shape: readonly number[], bytes: Uint8Array): Weight {
    const { rows, cols } = checkWeightShape(dtype, shape, bytes.byteLength);
    return new NativeWeight(dtype, shape, rows, cols, this.addon.loadWeight(this.context, DTYPE_CODES[dtype], rows, cols, bytes, this.repack));
  }

  /**
   * Maps the tensor's bytes straight from the model file: no copy and a page
   * cache shared between processes, unless the weight is repacked (see
   * NativeBackendOptions.repack), which reads it through the mapping; with a
   * tile cache, repacked tiles are mapped from there when an earlier load saved them.
   */
  loadWeightFromFile(path: string, byteOffset: number, dtype: DType, shape: readonly number[]): Weight {
    const { rows, cols } = checkWeightShape(dtype, shape);
    check(Number.isSafeInteger(byteOffset) && byteOffset >= 0, 'TESSERA_ERR_INVALID_ARGUMENT', `bad byte offset ${byteOffset}`);
    try {
      const tileFile = this.repack ? this.tileCache?.fileFor({ path, byteOffset, dtype, rows, cols }) : undefined;
      const handle = this.addon.mapWeight(this.context, DTYPE_CODES[dtype], rows, cols, path, byteOffset, this.repack, tileFile);
      if (tileFile && this.addon.weightLayout(handle) === 'tiles') this.tileCache?.checkSaved(tileFile);
      return new NativeWeight(dtype, shape, rows, cols, handle);
    } catch (error) {
      throw new TesseraError('TESSERA_ERR_FILE_READ', `${(error as Error).message}; check that the model file is complete and readable`);
    }
  }

  /** How the weight is held: the file's layout, tiles packed in memory, or tiles mapped from the tile cache. */
  weightLayout(weight: Weight): 'stored' | 'tiles' | 'saved-tiles' {
    return this.addon.weightLayout(asNativeWeight(weight).handle);
  }

  readRows(weight: Weight, rowStart: number, rowEnd: number): Float32Array {
    const w = asNativeWeight(weight);
    check(
      Number.isInteger(rowStart) && Number.isInteger(rowEnd) && 0 <= rowStart && rowStart <= rowEnd && rowEnd <= w.rows,
      'TESSERA_ERR_INVALID_ARGUMENT',
      `rows [${rowStart}, ${rowEnd}) are outside a weight of ${w.rows} rows`,
    );
    return this.addon.readRows(this.context, w.handle, rowStart, rowEnd, outputArray((rowEnd - rowStart) * w.cols));
  }

  matmul(x: Float32Array, weight: Weight, numTokens: number, out?: Float32Array): Float32Array {
    const w = asNativeWeight(weight);
    checkMatmulInput(x, w, numTokens);
    return this.addon.matmul(this.context, w.handle, x, numTokens, this.floatActivations, outOrNew(out, numTokens * w.rows));
  }

  matmulMany(x: Float32Array, weights: readonly Weight[], numTokens: number, given?: readonly Float32Array[]): Float32Array[] {
    const ws = weights.map(asNativeWeight);
    checkMatmulMany(ws.length, given);
    for (const w of ws) checkMatmulInput(x, w, numTokens);
    const outs = ws.map((w, i) => outOrNew(given?.[i], numTokens * w.rows));
    if (numTokens === 0) return outs;
    return this.addon.matmulMany(this.context, ws.map((w) => w.handle), x, numTokens, this.floatActivations, outs);
  }

  embed(ids: Int32Array, table: Weight): Float32Array {
    const w = asNativeWeight(table);
    for (const id of ids) {
      check(
        id >= 0 && id < w.rows,
        'TESSERA_ERR_INVALID_ARGUMENT',
        `token id ${id} is outside the embedding table of ${w.rows} entries; the tokenizer and model do not match`,
      );
    }
    return this.addon.embed(this.context, w.handle, ids, outputArray(ids.length * w.cols));
  }

  rmsNorm(x: Float32Array, weight: Weight, numRows: number, eps: number, out?: Float32Array): Float32Array {
    const w = asNativeWeight(weight);
    const dim = w.rows * w.cols;
    check(x.length === numRows * dim, 'TESSERA_ERR_INVALID_ARGUMENT', `rmsNorm input has ${x.length} values, expected ${numRows} rows of ${dim}`);
    return this.addon.rmsNorm(this.context, x, w.handle, numRows, eps, outOrNew(out, x.length));
  }

  addBias(x: Float32Array, bias: Weight, numRows: number): void {
    const w = asNativeWeight(bias);
    const dim = w.rows * w.cols;
    checkBiasRows(x, numRows, dim);
    this.addon.addBias(this.context, x, w.handle, numRows);
  }

  rope(args: RopeArgs): void {
    const { x, positions, numHeads, headDim, ropeDims, style, inverseFrequencies } = args;
    checkRopeArgs(args);
    this.addon.rope(this.context, x, positions, numHeads, headDim, ropeDims, style === 'halves', inverseFrequencies);
  }

  writeKv(pool: KvPool, blockTable: Int32Array, positions: Int32Array, values: Float32Array): void {
    const rowSize = pool.numKvHeads * pool.headDim;
    check(
      values.length === positions.length * rowSize,
      'TESSERA_ERR_INVALID_ARGUMENT',
      `writeKv got ${values.length} values for ${positions.length} positions of ${rowSize}`,
    );
    checkBlocks(pool, blockTable, positions);
    this.addon.writeKv(this.context, pool.data, pool.blockSize, rowSize, blockTable, positions, values);
  }

  attention(args: AttentionArgs): Float32Array {
    checkAttention(args);
    const { query, keyCache, valueCache, blockTable, positions, numHeads, numKvHeads, headDim, scale } = args;
    return this.addon.attention(
      this.context, query, keyCache.data, valueCache.data, keyCache.blockSize, numKvHeads,
      blockTable, positions, numHeads, headDim, scale, outputArray(query.length),
    );
  }

  writeKvBatch(args: KvWriteBatchArgs): void {
    const { keyCache, valueCache, keys, values, segments } = args;
    const rowSize = keyCache.numKvHeads * keyCache.headDim;
    check(keys.length === values.length, 'TESSERA_ERR_INVALID_ARGUMENT', `writeKvBatch got ${keys.length} keys but ${values.length} values`);
    checkKvSegments(batchRows(keys.length, rowSize, 'writeKvBatch keys'), segments);
    checkSamePools(keyCache, valueCache);
    if (isLoneSegment(segments, rowSize, keys.length)) {
      // One sequence filling the batch (a lone decode or prefill): the per-sequence writes, nothing to pack.
      this.writeKv(keyCache, segments[0].blockTable, segments[0].positions, keys);
      this.writeKv(valueCache, segments[0].blockTable, segments[0].positions, values);
      return;
    }
    for (const segment of segments) checkBlocks(keyCache, segment.blockTable, segment.positions);
    const packed = packSegments(segments);
    this.addon.writeKvBatch(
      this.context, keyCache.data, valueCache.data, keyCache.blockSize, rowSize,
      packed.layout, packed.positions, packed.blockTables, keys, values,
    );
  }

  attentionBatch(args: AttentionBatchArgs): Float32Array {
    const { query, keyCache, valueCache, segments, numHeads, numKvHeads, headDim, scale, out } = args;
    if (out) checkOutLength(out, query.length);
    if (isLoneSegment(segments, numHeads * headDim, query.length)) {
      // One sequence filling the batch: the per-sequence call (same kernel, same bits), nothing to pack.
      const { blockTable, positions } = segments[0];
      const result = this.attention({ query, keyCache, valueCache, blockTable, positions, numHeads, numKvHeads, headDim, scale });
      if (!out) return result;
      out.set(result);
      return out;
    }
    check(numKvHeads > 0 && numHeads % numKvHeads === 0, 'TESSERA_ERR_INVALID_ARGUMENT', `numHeads ${numHeads} must be a multiple of numKvHeads ${numKvHeads}`);
    checkKvSegments(batchRows(query.length, numHeads * headDim, 'attentionBatch query'), segments);
    checkAttentionPools(keyCache, valueCache, numKvHeads, headDim);
    for (const segment of segments) checkBlocks(keyCache, segment.blockTable, segment.positions);
    const packed = packSegments(segments);
    // The kernel writes the segments' rows only.
    if (out) zeroRowsOutsideSegments(out, segments, numHeads * headDim);
    return this.addon.attentionBatch(
      this.context, query, keyCache.data, valueCache.data, keyCache.blockSize, numKvHeads, numHeads, headDim, scale,
      packed.layout, packed.positions, packed.blockTables, out ?? new Float32Array(query.length),
    );
  }

  siluMul(gate: Float32Array, up: Float32Array, out?: Float32Array): Float32Array {
    check(gate.length === up.length, 'TESSERA_ERR_INVALID_ARGUMENT', `siluMul got ${gate.length} gate and ${up.length} up values`);
    return this.addon.siluMul(this.context, gate, up, outOrNew(out, gate.length));
  }

  gatherRows(x: Float32Array, rows: Int32Array, rowSize: number): Float32Array {
    return gatherRowsOnHost(x, rows, rowSize);
  }

  addInPlace(a: Float32Array, b: Float32Array): void {
    check(a.length === b.length, 'TESSERA_ERR_INVALID_ARGUMENT', `addInPlace got arrays of ${a.length} and ${b.length} values`);
    this.addon.addInPlace(this.context, a, b);
  }
}

/**
 * An array the addon fills completely; large ones skip zero-filling (a
 * prefill allocates about a gigabyte of activations).
 */
function checkMatmulInput(x: Float32Array, w: NativeWeight, numTokens: number): void {
  check(
    Number.isInteger(numTokens) && numTokens >= 0 && x.length === numTokens * w.cols,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `matmul input has ${x.length} values but ${numTokens} tokens of ${w.cols} features need ${numTokens * w.cols}`,
  );
}

/** One segment covering all `length` values of rows of `rowWidth`: the per-sequence ops serve it unpacked. */
function isLoneSegment(segments: readonly KvSegment[], rowWidth: number, length: number): boolean {
  return segments.length === 1 && segments[0].start === 0 && segments[0].positions.length * rowWidth === length;
}

/** The caller's buffer (checked) or a new one. */
function outOrNew(out: Float32Array | undefined, length: number): Float32Array {
  if (!out) return outputArray(length);
  checkOutLength(out, length);
  return out;
}

function outputArray(length: number): Float32Array {
  if (length < 65536) return new Float32Array(length);
  const bytes = Buffer.allocUnsafeSlow(length * 4);
  return new Float32Array(bytes.buffer, bytes.byteOffset, length);
}

/** The checks the reference makes, with the same messages, before native code touches the pools. */
function checkAttention(args: AttentionArgs): void {
  const { query, keyCache, valueCache, blockTable, positions, numHeads, numKvHeads, headDim } = args;
  check(numKvHeads > 0 && numHeads % numKvHeads === 0, 'TESSERA_ERR_INVALID_ARGUMENT', `numHeads ${numHeads} must be a multiple of numKvHeads ${numKvHeads}`);
  check(
    query.length === positions.length * numHeads * headDim,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `attention query has ${query.length} values, expected ${positions.length} tokens × ${numHeads} heads × ${headDim}`,
  );
  checkAttentionPools(keyCache, valueCache, numKvHeads, headDim);
  checkBlocks(keyCache, blockTable, positions);
}

function checkAttentionPools(keyCache: KvPool, valueCache: KvPool, numKvHeads: number, headDim: number): void {
  for (const pool of [keyCache, valueCache]) {
    check(
      pool.numKvHeads === numKvHeads && pool.headDim === headDim && pool.blockSize === keyCache.blockSize &&
        pool.data.length === keyCache.data.length && pool.dtype === keyCache.dtype,
      'TESSERA_ERR_INVALID_ARGUMENT',
      'the KV pools do not match the attention heads (numKvHeads, headDim, blockSize, size or dtype differ)',
    );
  }
}

/**
 * Segments as the addon takes them: layout [numSegments, 4] (first row, row
 * count, offset and length of the block table), and the positions and block
 * tables of all segments end to end.
 */
function packSegments(segments: readonly KvSegment[]): { layout: Int32Array; positions: Int32Array; blockTables: Int32Array } {
  let rows = 0;
  let tableLength = 0;
  for (const segment of segments) {
    rows += segment.positions.length;
    tableLength += segment.blockTable.length;
  }
  const layout = new Int32Array(segments.length * 4);
  const positions = new Int32Array(rows);
  const blockTables = new Int32Array(tableLength);
  let row = 0;
  let table = 0;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    layout[4 * i] = segment.start;
    layout[4 * i + 1] = segment.positions.length;
    layout[4 * i + 2] = table;
    layout[4 * i + 3] = segment.blockTable.length;
    positions.set(segment.positions, row);
    blockTables.set(segment.blockTable, table);
    row += segment.positions.length;
    table += segment.blockTable.length;
  }
  return { layout, positions, blockTables };
}

/** Every position maps through the block table to a block inside the pool. */
function checkBlocks(pool: KvPool, blockTable: Int32Array, positions: Int32Array): void {
  for (const position of positions) kvSlotOffset(pool, blockTable, position);
}
