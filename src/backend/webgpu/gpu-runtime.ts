/**
 * The device side of the WebGPU backend, living on the GPU thread: weights
 * (split in parts of at most maxStorageBufferBindingSize rows), KV pools and
 * a step's activation tensors, and `run`, which records a list of ops into
 * one command buffer, submits it once, and reads back only what was asked.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { TesseraError } from '../../core/errors.js';
import { byteSize } from '../../core/dtype.js';
import { GpuArena } from './gpu-arena.js';
import { encodeDispatches, prepareOp, type GpuPool, type GpuWeight, type WeightPart } from './gpu-encoder.js';
import { GpuMemory, align } from './gpu-memory.js';
import { PipelineCache } from './gpu-pipelines.js';
import { BindGroupCache } from './bind-group-cache.js';
import type { AdapterDescription, LoadWeightRequest, OpenRequest, PoolSpec, RunRequest, RunTimings } from './gpu-protocol.js';
import { openDevice } from './gpu-adapter.js';
import { canonicalSlots } from './slot-table.js';
import { KernelProfiler } from './kernel-profiler.js';

export class GpuRuntime {
  private readonly weights = new Map<number, GpuWeight>();
  private readonly pools = new Map<number, GpuPool>();
  /** The open step's tensors: id → buffer. */
  private readonly tensors = new Map<number, GPUBuffer>();
  private readonly slotTables = new Map<number, GPUBuffer>();
  private readonly pipelines: PipelineCache;
  private readonly bindGroups: BindGroupCache;
  private readonly memory: GpuMemory;
  private readonly bindingLimit: number;
  private readonly alignment: number;
  private readonly standIn: GPUBuffer;
  private staging: GPUBuffer | undefined;
  /** The step's command buffer while partial requests fill it. */
  private open: OpenCommandBuffer | undefined;
  /**
   * TESSERA_WEBGPU_SUBMIT_EVERY=N submits a step's command buffer after every
   * N partial requests (about 48 ops each) instead of once at its end: more
   * submissions, but the device overlaps the host's recording. Default 0: one.
   */
  private readonly submitEvery = Math.max(0, Math.floor(Number(process.env.TESSERA_WEBGPU_SUBMIT_EVERY ?? 0)) || 0);
  /** Device time per kernel (TESSERA_WEBGPU_PROFILE=1); one command buffer a step then, whatever submitEvery says. */
  private profiler: KernelProfiler | undefined;
  /** Lanes per matmul row: the subgroup size where shuffles work, else fewer on a CPU adapter (barriers are dear there). */
  readonly matmulLanes: { lanes: number; shuffles: boolean };

  private constructor(private readonly device: GPUDevice, readonly adapter: AdapterDescription, budget: number, bindingLimit: number) {
    this.pipelines = new PipelineCache(device);
    this.bindGroups = new BindGroupCache(device);
    const limit = device.limits.maxStorageBufferBindingSize;
    this.bindingLimit = bindingLimit > 0 ? Math.min(bindingLimit, limit) : limit;
    this.alignment = Math.max(device.limits.minUniformBufferOffsetAlignment, device.limits.minStorageBufferOffsetAlignment);
    this.memory = new GpuMemory(device, budget, device.limits.maxBufferSize);
    this.standIn = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    this.profiler = KernelProfiler.fromEnvironment(device);
    this.matmulLanes = matmulLanes(adapter, device.features.has('subgroups'));
  }

  static async open(request: OpenRequest): Promise<GpuRuntime> {
    const { device, adapter } = await openDevice(request.flags, request.powerPreference);
    return new GpuRuntime(device, adapter, request.memoryBudget, request.bindingLimit);
  }

  stats() {
    return this.memory.stats();
  }

  /** Uploads a weight in its file bytes, in parts of whole rows that each fit one binding. */
  async loadWeight(request: LoadWeightRequest): Promise<void> {
    const { id, dtype, rows, cols, source } = request;
    const rowBytes = byteSize(dtype, cols);
    const rowsPerPart = Math.max(1, Math.floor(this.bindingLimit / rowBytes));
    const parts: WeightPart[] = [];
    const file = 'path' in source ? openSync(source.path, 'r') : undefined;
    this.device.pushErrorScope('out-of-memory');
    try {
      for (let rowStart = 0; rowStart < rows; rowStart += rowsPerPart) {
        const partRows = Math.min(rowsPerPart, rows - rowStart);
        const bytes = partRows * rowBytes;
        const buffer = this.memory.persistent('weight', bytes, `weight ${id} rows ${rowStart}+${partRows}`, true);
        const target = new Uint8Array(buffer.getMappedRange(), 0, bytes);
        if ('bytes' in source) target.set(source.bytes.subarray(rowStart * rowBytes, rowStart * rowBytes + bytes));
        else readFully(file as number, target, source.byteOffset + rowStart * rowBytes);
        buffer.unmap();
        parts.push({ buffer, rowStart, rows: partRows });
      }
    } finally {
      if (file !== undefined) closeSync(file);
      const error = await this.device.popErrorScope();
      if (error) {
        for (const part of parts) this.memory.release('weight', part.buffer);
        throw this.memory.outOfMemory(`a weight of ${rows}×${cols} ${dtype}`, rows * rowBytes);
      }
    }
    this.weights.set(id, { dtype, rows, cols, rowBytes, parts });
  }

  /**
   * Encodes a request's ops into the step's command buffer. A partial request
   * (sent while the caller is still recording the step) stops there; the
   * next whole one submits everything as one command buffer and reads back
   * only what it names.
   */
  async run(request: RunRequest): Promise<{ reads: Float32Array[]; pools: ArrayBuffer[]; timings: RunTimings }> {
    this.encode(request);
    if (request.partial) return { reads: [], pools: [], timings: { dispatches: 0, encodeMs: 0, waitMs: 0 } };
    return this.submit(request);
  }

  /** The synchronous half of run: allocations, uploads and dispatches into the open command buffer. */
  encode(request: RunRequest): void {
    const started = performance.now();
    for (const id of request.freeWeights) this.freeWeight(id);
    for (const id of request.freePools) this.freePool(id);
    for (const spec of request.pools) this.createPool(spec);
    for (const [id, floats] of request.tensors) this.tensors.set(id, this.memory.take(floats * 4));
    for (const [id, data] of request.uploads) this.device.queue.writeBuffer(this.tensor(id), 0, data);
    const open = (this.open ??= this.openCommandBuffer());
    const arena = new GpuArena(this.alignment);
    const context = { pipelines: this.pipelines, tensor: (i: number) => this.tensor(i), weight: (i: number) => this.weight(i), pool: (i: number) => this.pool(i), slots: (n: number) => this.slots(n), standIn: this.standIn, matmulLanes: this.matmulLanes };
    const dispatches = request.ops.flatMap((op) => prepareOp(op, context, arena));
    const arenaBuffer = this.memory.take(arena.size);
    arena.upload(this.device.queue, arenaBuffer);
    open.arenas.push(arenaBuffer);
    if (this.profiler) {
      for (const dispatch of dispatches) {
        open.pass.end();
        open.pass = this.profiler.pass(open.encoder, dispatch.key, dispatch.groups);
        encodeDispatches(open.pass, this.pipelines, this.bindGroups, [dispatch], arenaBuffer);
      }
    } else {
      encodeDispatches(open.pass, this.pipelines, this.bindGroups, dispatches, arenaBuffer);
    }
    open.dispatches += dispatches.length;
    if (!this.profiler && request.partial && this.submitEvery > 0 && ++open.partials % this.submitEvery === 0) {
      // Opt-in: the device starts on the step's first layers while the rest is still being recorded.
      open.pass.end();
      this.device.queue.submit([open.encoder.finish()]);
      open.encoder = this.device.createCommandEncoder();
      open.pass = open.encoder.beginComputePass();
    }
    open.encodeMs += performance.now() - started;
  }

  /** The readback buffer, kept from step to step (a step reads back the same logits as the last). */
  private stagingBuffer(bytes: number): GPUBuffer {
    if (!this.staging || this.staging.size < bytes) {
      this.staging?.destroy();
      this.staging = this.device.createBuffer({ size: align(Math.max(bytes, 256), 256), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    }
    return this.staging;
  }

  /** After a failed partial request: drop the step's command buffer and tensors. */
  abandon(): void {
    const open = this.open;
    this.open = undefined;
    if (open) {
      open.pass.end();
      open.encoder.finish();
      for (const arena of open.arenas) this.memory.give(arena);
      void this.device.popErrorScope();
      void this.device.popErrorScope();
    }
    this.endStep();
  }

  private openCommandBuffer(): OpenCommandBuffer {
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    const encoder = this.device.createCommandEncoder();
    return { encoder, pass: encoder.beginComputePass(), arenas: [], dispatches: 0, partials: 0, encodeMs: 0 };
  }

  private async submit(request: RunRequest): Promise<{ reads: Float32Array[]; pools: ArrayBuffer[]; timings: RunTimings }> {
    const started = performance.now();
    const open = this.open ?? this.openCommandBuffer();
    this.open = undefined;
    open.pass.end();
    const { encoder } = open;
    const readSources = [...request.reads.map(([id]) => this.tensor(id)), ...request.readPools.map((id) => this.pool(id).buffer)];
    const readSizes = [...request.reads.map(([, floats]) => floats * 4), ...request.readPools.map((id) => this.pool(id).buffer.size)];
    let staging: GPUBuffer | undefined;
    const offsets: number[] = [];
    if (readSources.length > 0) {
      let total = 0;
      for (const size of readSizes) {
        offsets.push(total);
        total = align(total + size, 256);
      }
      staging = this.stagingBuffer(total);
      readSources.forEach((source, i) => {
        if (readSizes[i] > 0) encoder.copyBufferToBuffer(source, 0, staging as GPUBuffer, offsets[i], align(readSizes[i], 4));
      });
    }
    this.profiler?.resolve(encoder);
    this.device.queue.submit([encoder.finish()]);
    const submitted = performance.now();
    const kernels = this.profiler ? await this.profiler.collect() : undefined;
    const timings = (): RunTimings => ({ dispatches: open.dispatches, encodeMs: open.encodeMs + submitted - started, waitMs: performance.now() - submitted, kernels });
    const oom = await this.device.popErrorScope();
    const invalid = await this.device.popErrorScope();
    for (const arena of open.arenas) this.memory.give(arena);
    if (request.endStep) this.endStep();
    if (oom) throw this.memory.outOfMemory('a step\'s activations', 0);
    if (invalid) throw new TesseraError('TESSERA_ERR_INTERNAL', `the WebGPU device rejected a step: ${invalid.message}`);
    if (!staging) return { reads: [], pools: [], timings: timings() };
    await staging.mapAsync(GPUMapMode.READ);
    const mapped = staging.getMappedRange();
    const copy = (i: number) => mapped.slice(offsets[i], offsets[i] + readSizes[i]);
    const reads = request.reads.map((_, i) => new Float32Array(copy(i)));
    const pools = request.readPools.map((_, i) => copy(request.reads.length + i));
    staging.unmap();
    return { reads, pools, timings: timings() };
  }

  /** Best read rate (bytes/s) of `repeats` dispatches that each read a buffer of `bytes` once. */
  async measureBandwidth(bytes: number, repeats: number): Promise<number> {
    const size = align(Math.min(bytes, this.bindingLimit, this.device.limits.maxBufferSize), 16);
    const data = this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE });
    const threads = 256 * 4096;
    const sums = this.device.createBuffer({ size: threads * 4, usage: GPUBufferUsage.STORAGE });
    const params = this.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(params, 0, new Uint32Array([size / 16, threads, 0, 0]));
    const pipeline = this.pipelines.get({ kind: 'bandwidth' });
    const group = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [data, sums, params].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const once = async (): Promise<number> => {
      const encoder = this.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(4096);
      pass.end();
      const started = performance.now();
      this.device.queue.submit([encoder.finish()]);
      await this.device.queue.onSubmittedWorkDone();
      return (size / (performance.now() - started)) * 1000;
    };
    await once(); // first touch and compilation
    let best = 0;
    for (let i = 0; i < repeats; i++) best = Math.max(best, await once());
    for (const buffer of [data, sums, params]) buffer.destroy();
    return best;
  }

  /** The step's tensors go back to the pool (their work is submitted; later uses queue after it). */
  private endStep(): void {
    for (const buffer of this.tensors.values()) this.memory.give(buffer);
    this.tensors.clear();
  }

  private createPool(spec: PoolSpec): void {
    const bytes = spec.elements * (spec.dtype === 'f16' ? 2 : 4);
    this.device.pushErrorScope('out-of-memory');
    const buffer = this.memory.persistent('pool', bytes, `kv pool ${spec.id}`, true);
    const mapped = buffer.getMappedRange();
    new Uint8Array(mapped, 0, bytes).set(new Uint8Array(spec.data.buffer, spec.data.byteOffset, bytes));
    buffer.unmap();
    void this.device.popErrorScope().then((error) => {
      if (error) process.emitWarning(`KV pool ${spec.id}: ${error.message}`);
    });
    this.pools.set(spec.id, { buffer, dtype: spec.dtype, blockSize: spec.blockSize, numKvHeads: spec.numKvHeads, headDim: spec.headDim });
  }

  private freeWeight(id: number): void {
    this.bindGroups.clear();
    for (const part of this.weights.get(id)?.parts ?? []) this.memory.release('weight', part.buffer);
    this.weights.delete(id);
  }

  private freePool(id: number): void {
    this.bindGroups.clear();
    const pool = this.pools.get(id);
    if (pool) this.memory.release('pool', pool.buffer);
    this.pools.delete(id);
  }

  private tensor(id: number): GPUBuffer {
    return found(this.tensors.get(id), `step tensor ${id}`);
  }

  private weight(id: number): GpuWeight {
    return found(this.weights.get(id), `weight ${id}`);
  }

  private pool(id: number): GpuPool {
    return found(this.pools.get(id), `KV pool ${id}`);
  }

  private slots(leaves: number): GPUBuffer {
    let buffer = this.slotTables.get(leaves);
    if (!buffer) {
      const table = canonicalSlots(leaves);
      buffer = this.device.createBuffer({ size: align(Math.max(table.byteLength, 16), 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      this.device.queue.writeBuffer(buffer, 0, table);
      this.slotTables.set(leaves, buffer);
    }
    return buffer;
  }
}

/**
 * Shuffles need a known, fixed subgroup size (rows map to whole subgroups);
 * TESSERA_WEBGPU_MATMUL_LANES=N forces N lanes folding through workgroup memory.
 */
function matmulLanes(adapter: AdapterDescription, subgroups: boolean): { lanes: number; shuffles: boolean } {
  const powers = [1, 2, 4, 8, 16, 32, 64, 128];
  const forced = Number(process.env.TESSERA_WEBGPU_MATMUL_LANES ?? 0);
  if (powers.includes(forced)) return { lanes: forced, shuffles: false };
  const size = adapter.subgroupMinSize;
  if (subgroups && size === adapter.subgroupMaxSize && size >= 4 && powers.includes(size)) return { lanes: size, shuffles: true };
  return { lanes: isCpuAdapter(adapter) ? 8 : 32, shuffles: false };
}

function isCpuAdapter(adapter: AdapterDescription): boolean {
  return adapter.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(`${adapter.description} ${adapter.device} ${adapter.architecture}`);
}

interface OpenCommandBuffer {
  encoder: GPUCommandEncoder;
  pass: GPUComputePassEncoder;
  /** Parameter arenas of its requests, back to the pool once it is submitted. */
  arenas: GPUBuffer[];
  dispatches: number;
  partials: number;
  encodeMs: number;
}

function found<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new TesseraError('TESSERA_ERR_INTERNAL', `the GPU thread has no ${what}`);
  return value;
}

function readFully(fd: number, target: Uint8Array, position: number): void {
  let done = 0;
  while (done < target.byteLength) {
    const n = readSync(fd, target, done, target.byteLength - done, position + done);
    if (n === 0) throw new TesseraError('TESSERA_ERR_TRUNCATED', `the model file ended ${target.byteLength - done} bytes early`);
    done += n;
  }
}
