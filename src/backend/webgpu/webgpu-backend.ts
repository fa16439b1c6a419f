/**
 * The WebGPU backend: the Backend interface over WGSL kernels run by Dawn on
 * a GPU thread (gpu-thread.ts). Weights stay on the device in their file
 * dtype; KV pools live there too (pool.data is the host copy they start
 * from). Inside a step (beginStep … endStep) ops are recorded and run as one
 * command buffer, and only the arrays named in flush/endStep come back;
 * outside a step every op runs at once and returns its values, like a CPU
 * backend (slowly: one round trip per op).
 *
 * Results differ from the CPU backends by float rounding only (the dot
 * products take f32 activations; exp, sqrt and the reduction trees are the
 * GPU's); each kernel's fixed order is documented beside it in kernels/, so a
 * token's results never depend on its batch or chunking.
 */
import type { AttentionArgs, AttentionBatchArgs, Backend, KvPool, KvSegment, KvWriteBatchArgs, RopeArgs, Weight } from '../backend.js';
import type { DType } from '../../core/dtype.js';
import { checkBiasRows, checkRopeArgs } from '../pointwise-args.js';
import { check } from '../../core/errors.js';
import { batchRows, checkKvSegments, checkSamePools, kvSlotOffset } from '../kv-segments.js';
import { checkMatmulMany, checkOutLength } from '../out-buffer.js';
import { checkWeightShape } from '../weight-shape.js';
import { GpuChannel } from './gpu-channel.js';
import type { AdapterDescription, GpuMemoryStats, WeightSource } from './gpu-protocol.js';
import { StepRecorder } from './step-recorder.js';
import { ropeTable } from './rope-table.js';

export interface WebGpuBackendOptions {
  /** Dawn flags for create(), e.g. ['backend=vulkan']. */
  flags?: string[];
  powerPreference?: 'high-performance' | 'low-power';
  /** Refuse to hold more than this on the device (MiB); default: $TESSERA_GPU_MEMORY_MIB, else no budget of our own. */
  memoryMiB?: number;
  /** Split weights into parts of at most this many bytes (default: the adapter's maxStorageBufferBindingSize). */
  bindingLimit?: number;
  /** Fuse matmuls with the residual add / silu-mul after them inside a step (default true; the same bits). */
  fuse?: boolean;
}

export class WebGpuWeight implements Weight {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly rows: number,
    readonly cols: number,
    readonly id: number,
  ) {}
}

let nextWeight = 1;

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly adapter: AdapterDescription;
  private readonly channel: GpuChannel;
  private readonly recorder: StepRecorder;
  /** dtype and shape of every weight loaded, by id, for the recorder's fusions. */
  private readonly weightShapes = new Map<number, { dtype: DType; rows: number; cols: number }>();
  private lastRope: { positions: Int32Array; inverseFrequencies: Float32Array; halfDims: number; epoch: number; id: number } | undefined;

  constructor(options: WebGpuBackendOptions = {}) {
    this.channel = new GpuChannel();
    const envBudget = Number(process.env.TESSERA_GPU_MEMORY_MIB ?? 0);
    const memoryMiB = options.memoryMiB ?? (Number.isFinite(envBudget) ? envBudget : 0);
    try {
      const reply = this.channel.call({ kind: 'open', flags: options.flags ?? [], powerPreference: options.powerPreference, memoryBudget: memoryMiB * 1024 * 1024, bindingLimit: options.bindingLimit ?? 0 });
      this.adapter = reply.adapter as AdapterDescription;
    } catch (error) {
      this.channel.close();
      throw error;
    }
    this.recorder = new StepRecorder(this.channel, options.fuse ?? true);
  }

  /** Runs sent to the device so far (one per step when steps are used). */
  get submissions(): number {
    return this.recorder.submissions;
  }

  /** Summed over every run so far: runs, dispatches, ms recording, ms per round trip, and the GPU thread's encode and wait ms. */
  get timings(): Readonly<StepRecorder['timings']> {
    return this.recorder.timings;
  }

  memoryStats(): GpuMemoryStats {
    return this.channel.call({ kind: 'stats' }).stats as GpuMemoryStats;
  }

  /**
   * The device's read bandwidth in GB/s: the best of `repeats` passes over a
   * buffer of `bytes` (capped at one binding), for benchmarks.
   */
  measureReadBandwidth(bytes = 1024 * 1024 * 1024, repeats = 5): number {
    return (this.channel.call({ kind: 'bandwidth', bytes, repeats }).bytesPerSecond ?? Number.NaN) / 1e9;
  }

  /** Stops the GPU thread; the backend cannot be used afterwards. */
  close(): void {
    this.channel.close();
  }

  beginStep(): void {
    this.recorder.beginStep();
  }

  flush(arrays: readonly Float32Array[]): void {
    this.recorder.flush(arrays);
  }

  endStep(arrays: readonly Float32Array[]): void {
    this.recorder.endStep(arrays);
  }

  loadWeight(dtype: DType, shape: readonly number[], bytes: Uint8Array): Weight {
    const { rows, cols } = checkWeightShape(dtype, shape, bytes.byteLength);
    return this.upload(dtype, shape, rows, cols, { bytes });
  }

  /** The GPU thread reads the tensor's bytes from the file itself, straight into device memory. */
  loadWeightFromFile(path: string, byteOffset: number, dtype: DType, shape: readonly number[]): Weight {
    const { rows, cols } = checkWeightShape(dtype, shape);
    check(Number.isSafeInteger(byteOffset) && byteOffset >= 0, 'TESSERA_ERR_INVALID_ARGUMENT', `bad byte offset ${byteOffset}`);
    return this.upload(dtype, shape, rows, cols, { path, byteOffset });
  }

  private upload(dtype: DType, shape: readonly number[], rows: number, cols: number, source: WeightSource): Weight {
    const id = nextWeight++;
    this.channel.call({ kind: 'loadWeight', id, dtype, rows, cols, source });
    const weight = new WebGpuWeight(dtype, shape, rows, cols, id);
    this.recorder.trackWeight(weight, id);
    this.weightShapes.set(id, { dtype, rows, cols });
    return weight;
  }

  readRows(weight: Weight, rowStart: number, rowEnd: number): Float32Array {
    const w = asWebGpuWeight(weight);
    check(
      Number.isInteger(rowStart) && Number.isInteger(rowEnd) && 0 <= rowStart && rowStart <= rowEnd && rowEnd <= w.rows,
      'TESSERA_ERR_INVALID_ARGUMENT',
      `rows [${rowStart}, ${rowEnd}) are outside a weight of ${w.rows} rows`,
    );
    const rows = this.embedRows(Int32Array.from({ length: rowEnd - rowStart }, (_, i) => rowStart + i), w);
    if (this.recorder.open) this.recorder.flush([rows]);
    return rows;
  }

  matmul(x: Float32Array, weight: Weight, numTokens: number, out?: Float32Array): Float32Array {
    return this.matmulMany(x, [weight], numTokens, out ? [out] : undefined)[0];
  }

  matmulMany(x: Float32Array, weights: readonly Weight[], numTokens: number, given?: readonly Float32Array[]): Float32Array[] {
    const ws = weights.map(asWebGpuWeight);
    checkMatmulMany(ws.length, given);
    for (const w of ws) {
      check(
        Number.isInteger(numTokens) && numTokens >= 0 && x.length === numTokens * w.cols,
        'TESSERA_ERR_INVALID_ARGUMENT',
        `matmul input has ${x.length} values but ${numTokens} tokens of ${w.cols} features need ${numTokens * w.cols}`,
      );
    }
    given?.forEach((out, i) => checkOutLength(out, numTokens * ws[i].rows));
    if (numTokens === 0) return ws.map((w, i) => given?.[i] ?? new Float32Array(0));
    const input = this.recorder.input(x);
    const outs = ws.map((w, i) => this.recorder.output(given?.[i], numTokens * w.rows));
    const ops = ws.map((w, i) => ({ op: 'matmul', weight: w.id, x: input, out: outs[i].id, numTokens }) as const);
    this.recorder.record(ops, outs.map((o) => o.array));
    return outs.map((o) => o.array);
  }

  embed(ids: Int32Array, table: Weight): Float32Array {
    const w = asWebGpuWeight(table);
    for (const id of ids) {
      check(id >= 0 && id < w.rows, 'TESSERA_ERR_INVALID_ARGUMENT', `token id ${id} is outside the embedding table of ${w.rows} entries; the tokenizer and model do not match`);
    }
    return this.embedRows(ids, w);
  }

  private embedRows(ids: Int32Array, w: WebGpuWeight): Float32Array {
    const out = this.recorder.output(undefined, ids.length * w.cols);
    if (ids.length > 0) this.recorder.record({ op: 'embed', weight: w.id, ids: ids.slice(), out: out.id }, [out.array]);
    return out.array;
  }

  rmsNorm(x: Float32Array, weight: Weight, numRows: number, eps: number, given?: Float32Array): Float32Array {
    const w = asWebGpuWeight(weight);
    const dim = w.rows * w.cols;
    check(x.length === numRows * dim, 'TESSERA_ERR_INVALID_ARGUMENT', `rmsNorm input has ${x.length} values, expected ${numRows} rows of ${dim}`);
    if (given) checkOutLength(given, x.length);
    const input = this.recorder.input(x);
    const out = this.recorder.output(given, x.length);
    this.recorder.record({ op: 'rmsNorm', x: input, weight: w.id, out: out.id, rows: numRows, dim, eps }, [out.array]);
    return out.array;
  }

  addBias(x: Float32Array, bias: Weight, numRows: number): void {
    const w = asWebGpuWeight(bias);
    const dim = w.rows * w.cols;
    checkBiasRows(x, numRows, dim);
    if (x.length === 0) return;
    this.recorder.record({ op: 'addBias', x: this.recorder.inPlace(x), bias: w.id, n: x.length, dim }, [x]);
  }

  rope(args: RopeArgs): void {
    const { x, positions, numHeads, headDim, ropeDims, style, inverseFrequencies } = args;
    checkRopeArgs(args);
    if (x.length === 0 || ropeDims === 0) return;
    const id = this.recorder.inPlace(x);
    const table = this.ropeTable(positions, inverseFrequencies, ropeDims / 2);
    const op = { op: 'rope', x: id, table, numTokens: positions.length, numHeads, headDim, halfDims: ropeDims / 2, adjacent: style === 'adjacent' } as const;
    this.recorder.recordRope(op, x);
  }

  /** The cos/sin table of these positions, uploaded once a step (queries and keys rotate by the same one). */
  private ropeTable(positions: Int32Array, inverseFrequencies: Float32Array, halfDims: number): number {
    const last = this.lastRope;
    if (last && last.positions === positions && last.inverseFrequencies === inverseFrequencies && last.halfDims === halfDims && last.epoch === this.recorder.epoch && this.recorder.open) return last.id;
    const id = this.recorder.upload(ropeTable(positions, inverseFrequencies, halfDims));
    this.lastRope = { positions, inverseFrequencies, halfDims, epoch: this.recorder.epoch, id };
    return id;
  }

  writeKv(pool: KvPool, blockTable: Int32Array, positions: Int32Array, values: Float32Array): void {
    const rowSize = pool.numKvHeads * pool.headDim;
    check(values.length === positions.length * rowSize, 'TESSERA_ERR_INVALID_ARGUMENT', `writeKv got ${values.length} values for ${positions.length} positions of ${rowSize}`);
    const rowSlot = Int32Array.from(positions, (p) => kvSlotOffset(pool, blockTable, p) / rowSize);
    if (rowSlot.length === 0) return;
    const id = this.recorder.pool(pool);
    const rows = this.recorder.input(values);
    this.recorder.record({ op: 'writeKv', keyPool: id, valuePool: -1, keys: rows, values: rows, rowSlot, rowSize }, [], [pool]);
  }

  writeKvBatch(args: KvWriteBatchArgs): void {
    const { keyCache, valueCache, keys, values, segments } = args;
    const rowSize = keyCache.numKvHeads * keyCache.headDim;
    check(keys.length === values.length, 'TESSERA_ERR_INVALID_ARGUMENT', `writeKvBatch got ${keys.length} keys but ${values.length} values`);
    const numTokens = batchRows(keys.length, rowSize, 'writeKvBatch keys');
    checkKvSegments(numTokens, segments);
    checkSamePools(keyCache, valueCache);
    const rowSlot = new Int32Array(numTokens).fill(-1);
    for (const { start, positions, blockTable } of segments) {
      positions.forEach((p, i) => (rowSlot[start + i] = kvSlotOffset(keyCache, blockTable, p) / rowSize));
    }
    if (numTokens === 0) return;
    const op = {
      op: 'writeKv', keyPool: this.recorder.pool(keyCache), valuePool: this.recorder.pool(valueCache),
      keys: this.recorder.input(keys), values: this.recorder.input(values), rowSlot, rowSize,
    } as const;
    this.recorder.record(op, [], [keyCache, valueCache]);
  }

  attention(args: AttentionArgs): Float32Array {
    const { query, blockTable, positions, numHeads, headDim } = args;
    check(
      query.length === positions.length * numHeads * headDim,
      'TESSERA_ERR_INVALID_ARGUMENT',
      `attention query has ${query.length} values, expected ${positions.length} tokens × ${numHeads} heads × ${headDim}`,
    );
    return this.attentionBatch({ ...args, segments: [{ start: 0, positions, blockTable }] });
  }

  attentionBatch(args: AttentionBatchArgs): Float32Array {
    const { query, keyCache, valueCache, segments, numHeads, numKvHeads, headDim, scale, out: given } = args;
    check(numKvHeads > 0 && numHeads % numKvHeads === 0, 'TESSERA_ERR_INVALID_ARGUMENT', `numHeads ${numHeads} must be a multiple of numKvHeads ${numKvHeads}`);
    const numTokens = batchRows(query.length, numHeads * headDim, 'attentionBatch query');
    checkKvSegments(numTokens, segments);
    checkAttentionPools(keyCache, valueCache, numKvHeads, headDim);
    if (given) checkOutLength(given, query.length);
    const { rowInfo, blockTables } = packRows(keyCache, segments, numTokens);
    const input = this.recorder.input(query);
    const out = this.recorder.output(given, query.length);
    if (numTokens === 0) return out.array;
    const op = {
      op: 'attention', query: input, keyPool: this.recorder.pool(keyCache), valuePool: this.recorder.pool(valueCache),
      rowInfo, blockTables, out: out.id, numHeads, numKvHeads, headDim, scale,
    } as const;
    this.recorder.record(op, [out.array]);
    return out.array;
  }

  siluMul(gate: Float32Array, up: Float32Array, given?: Float32Array): Float32Array {
    check(gate.length === up.length, 'TESSERA_ERR_INVALID_ARGUMENT', `siluMul got ${gate.length} gate and ${up.length} up values`);
    if (given) checkOutLength(given, gate.length);
    if (gate.length === 0) return given ?? new Float32Array(0);
    return this.recorder.recordSiluMul(gate, up, given, (a, b) => {
      const [wa, wb] = [this.weightShapes.get(a), this.weightShapes.get(b)];
      return wa !== undefined && wb !== undefined && wa.dtype === wb.dtype && wa.rows === wb.rows && wa.cols === wb.cols;
    });
  }

  gatherRows(x: Float32Array, rows: Int32Array, rowSize: number): Float32Array {
    const numRows = batchRows(x.length, rowSize, 'gatherRows input');
    for (const row of rows) check(Number.isInteger(row) && row >= 0 && row < numRows, 'TESSERA_ERR_INVALID_ARGUMENT', `row ${row} is outside the ${numRows} rows`);
    const input = this.recorder.input(x);
    const out = this.recorder.output(undefined, rows.length * rowSize);
    if (rows.length > 0) this.recorder.record({ op: 'gather', x: input, rows: rows.slice(), out: out.id, rowSize }, [out.array]);
    return out.array;
  }

  addInPlace(a: Float32Array, b: Float32Array): void {
    check(a.length === b.length, 'TESSERA_ERR_INVALID_ARGUMENT', `addInPlace got arrays of ${a.length} and ${b.length} values`);
    if (a.length === 0) return;
    this.recorder.recordAdd(a, b);
  }
}

function asWebGpuWeight(weight: Weight): WebGpuWeight {
  check(weight instanceof WebGpuWeight, 'TESSERA_ERR_INVALID_ARGUMENT', 'this weight was loaded by another backend; load it with the WebGPU backend');
  return weight;
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

/** rowInfo [numTokens, 2] (position or -1, offset of the row's block table) and the block tables end to end, after checking every position. */
function packRows(pool: KvPool, segments: readonly KvSegment[], numTokens: number): { rowInfo: Int32Array; blockTables: Int32Array } {
  const rowInfo = new Int32Array(numTokens * 2).fill(-1);
  const blockTables = new Int32Array(segments.reduce((n, s) => n + s.blockTable.length, 0));
  let offset = 0;
  for (const { start, positions, blockTable } of segments) {
    for (const p of positions) kvSlotOffset(pool, blockTable, p);
    blockTables.set(blockTable, offset);
    positions.forEach((p, i) => {
      rowInfo[2 * (start + i)] = p;
      rowInfo[2 * (start + i) + 1] = offset;
    });
    offset += blockTable.length;
  }
  return { rowInfo, blockTables };
}
