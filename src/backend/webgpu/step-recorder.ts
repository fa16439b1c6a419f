/**
 * Records the ops of a step for the GPU thread and runs them: as one command
 * buffer per flush inside a step (Backend.beginStep / flush / endStep), or
 * op by op outside one, reading each op's results straight back, so callers
 * that never open a step see an ordinary synchronous backend.
 *
 * Host arrays map to step tensors through TensorRegions: an op's output
 * array (given or new) stands for its tensor until it is flushed; a host
 * array taken as input is uploaded (a copy, taken now) each time.
 */
import type { KvPool } from '../backend.js';
import { GpuChannel } from './gpu-channel.js';
import type { GpuOp, PoolSpec, RunRequest, RunTimings } from './gpu-protocol.js';
import { TensorRegions } from './tensor-regions.js';
import { TesseraError } from '../../core/errors.js';
import { addKernelTimes, type KernelTime } from './kernel-profiler.js';

/** Ops a step sends on to the GPU thread while still recording (a few layers' worth). */
const PARTIAL_OPS = 48;

export class StepRecorder {
  private readonly regions = new TensorRegions();
  /** Float count of every tensor of the open step. */
  private readonly lengths = new Map<number, number>();
  private readonly poolIds = new WeakMap<object, number>();
  private readonly freedPools: number[] = [];
  private readonly freedWeights: number[] = [];
  private readonly poolRegistry = new FinalizationRegistry<number>((id) => this.freedPools.push(id));
  private readonly weightRegistry = new FinalizationRegistry<number>((id) => this.freedWeights.push(id));
  private request = emptyRequest();
  private nextTensor = 1;
  private nextPool = 1;
  private stepOpen = false;
  /** Tensors whose values were never written: a matmul added them straight into the residual (recordAdd). */
  private readonly fusedAway = new Set<number>();
  /** Changes whenever a step ends, and with it every step tensor id. */
  epoch = 0;
  /** Runs sent to the GPU thread, for tests and benchmarks. */
  submissions = 0;
  /** Where the runs' time went (summed): recording ops here, the round trip, and the GPU thread's share of it. */
  readonly timings = { runs: 0, dispatches: 0, recordMs: 0, roundTripMs: 0, encodeMs: 0, waitMs: 0, kernels: {} as Record<string, KernelTime> };
  private recordingSince: number | undefined;

  constructor(
    private readonly channel: GpuChannel,
    /** Fuse a matmul with the add or silu-mul that follows it (same bits; tests compare with and without). */
    private readonly fuse = true,
  ) {}

  get open(): boolean {
    return this.stepOpen;
  }

  /** A weight id's device memory is freed once `owner` is collected. */
  trackWeight(owner: object, id: number): void {
    this.weightRegistry.register(owner, id);
  }

  /** The tensor of an input: the op that produced it in this step, or a fresh upload of the host values. */
  input(array: Float32Array): number {
    const id = this.regions.find(array);
    if (id !== undefined) {
      this.checkMaterialized(id);
      return id;
    }
    const fresh = this.tensor(array.length);
    this.request.uploads.push([fresh, array.slice()]);
    return fresh;
  }

  /** An op's output: `given` or a new array of `length`, standing for its tensor from now on. */
  output(given: Float32Array | undefined, length: number): { array: Float32Array; id: number } {
    const array = given ?? new Float32Array(length);
    const id = this.regions.find(array) ?? this.tensor(length);
    this.regions.set(array, id);
    this.fusedAway.delete(id);
    return { array, id };
  }

  /** An array an op rewrites in place. */
  inPlace(array: Float32Array): number {
    const id = this.input(array);
    this.regions.set(array, id);
    return id;
  }

  /** Host data as a tensor of its own (e.g. a RoPE table). */
  upload(values: Float32Array): number {
    const id = this.tensor(values.length);
    this.request.uploads.push([id, values]);
    return id;
  }

  /** The device pool mirroring `pool`, created from its host contents the first time. */
  pool(pool: KvPool): number {
    let id = this.poolIds.get(pool.data);
    if (id === undefined) {
      id = this.nextPool++;
      this.poolIds.set(pool.data, id);
      this.poolRegistry.register(pool.data, id);
      const spec: PoolSpec = { id, dtype: pool.dtype, blockSize: pool.blockSize, numKvHeads: pool.numKvHeads, headDim: pool.headDim, elements: pool.data.length, data: pool.data };
      this.request.pools.push(spec);
    }
    return id;
  }

  /**
   * Adds an op. Outside a step it runs now: `results` get their values and
   * `mirrored` pools their device contents (so host readers of pool.data,
   * such as tests, see the writes).
   */
  record(ops: GpuOp | readonly GpuOp[], results: readonly Float32Array[] = [], mirrored: readonly KvPool[] = []): void {
    this.recordingSince ??= performance.now();
    if (Array.isArray(ops)) this.request.ops.push(...(ops as GpuOp[]));
    else this.request.ops.push(ops as GpuOp);
    if (!this.stepOpen) this.run(results, mirrored, true);
    else if (this.request.ops.length >= PARTIAL_OPS) this.sendPartial();
  }

  /**
   * a += b. Inside a step, when b is the output of the matmul just recorded
   * (o_proj, down_proj), that matmul adds into a instead (the same f32 add,
   * one dispatch and one pass over memory less); b is then never written,
   * and a later use of it is refused as a bug.
   */
  recordAdd(a: Float32Array, b: Float32Array): void {
    const bId = this.regions.find(b);
    const last = this.request.ops[this.request.ops.length - 1];
    if (this.fuse && this.stepOpen && bId !== undefined && last?.op === 'matmul' && last.out === bId && !last.accumulate && this.regions.find(a) !== bId) {
      const aId = this.inPlace(a);
      if (aId !== last.x) {
        this.request.ops[this.request.ops.length - 1] = { ...last, out: aId, accumulate: true };
        this.fusedAway.add(bId);
        return;
      }
    }
    const bInput = this.input(b);
    this.record({ op: 'add', a: this.inPlace(a), b: bInput, n: a.length }, [a]);
  }

  /**
   * silu(gate) · up. Inside a step, when gate and up are the two matmuls just
   * recorded over one x (the feed-forward's gate and up, same dtype and
   * shape), they become one gated matmul writing the product (the same bits,
   * two dispatches and a pass over memory less); gate and up are then never
   * written, and a later use of them is refused as a bug.
   */
  recordSiluMul(gate: Float32Array, up: Float32Array, given: Float32Array | undefined, sameWeights: (a: number, b: number) => boolean): Float32Array {
    const [gateId, upId] = [this.regions.find(gate), this.regions.find(up)];
    const ops = this.request.ops;
    const [a, b] = [ops[ops.length - 2], ops[ops.length - 1]];
    if (
      this.fuse && this.stepOpen && gateId !== undefined && upId !== undefined && a?.op === 'matmul' && b?.op === 'matmul' &&
      a.out === gateId && b.out === upId && a.x === b.x && !a.accumulate && !b.accumulate && a.numTokens === b.numTokens &&
      sameWeights(a.weight, b.weight)
    ) {
      const out = given === gate ? { array: gate, id: gateId } : this.output(given, gate.length);
      ops.splice(ops.length - 2, 2, { op: 'matmulGated', gate: a.weight, up: b.weight, x: a.x, out: out.id, numTokens: a.numTokens });
      if (out.id !== gateId) this.fusedAway.add(gateId);
      this.fusedAway.add(upId);
      return out.array;
    }
    const upInput = this.input(up);
    if (given === gate) {
      const id = this.inPlace(gate);
      this.record({ op: 'siluMul', gate: id, up: upInput, out: id, n: gate.length }, [gate]);
      return gate;
    }
    const gateInput = this.input(gate);
    const out = this.output(given, gate.length);
    this.record({ op: 'siluMul', gate: gateInput, up: upInput, out: out.id, n: gate.length }, [out.array]);
    return out.array;
  }

  /**
   * RoPE. Inside a step, a second rotation by the same table right after the
   * first (a layer's keys after its queries) joins the first one's dispatch.
   */
  recordRope(op: Extract<GpuOp, { op: 'rope' }>, x: Float32Array): void {
    const last = this.request.ops[this.request.ops.length - 1];
    if (
      this.fuse && this.stepOpen && last?.op === 'rope' && last.x2 === undefined && last.table === op.table && last.x !== op.x &&
      last.numTokens === op.numTokens && last.headDim === op.headDim && last.halfDims === op.halfDims && last.adjacent === op.adjacent
    ) {
      this.request.ops[this.request.ops.length - 1] = { ...last, x2: op.x, numHeads2: op.numHeads };
      return;
    }
    this.record(op, [x]);
  }

  private checkMaterialized(id: number): void {
    if (this.fusedAway.has(id)) {
      throw new TesseraError('TESSERA_ERR_INTERNAL', 'a matmul result that was added into the residual directly was used again; this is a bug in the WebGPU recorder');
    }
  }

  /** The ops so far go to the GPU thread to be encoded while recording goes on. */
  private sendPartial(): void {
    const request = this.request;
    this.request = emptyRequest();
    request.partial = true;
    request.freeWeights = this.freedWeights.splice(0);
    request.freePools = this.freedPools.splice(0);
    this.channel.post(request, request.uploads.map(([, data]) => data.buffer as ArrayBuffer));
  }

  beginStep(): void {
    if (this.stepOpen) this.endStep([]);
    this.stepOpen = true;
  }

  flush(arrays: readonly Float32Array[]): void {
    this.run(arrays, [], false);
  }

  endStep(arrays: readonly Float32Array[]): void {
    this.stepOpen = false;
    this.run(arrays, [], true);
  }

  /** Sends what is recorded; fills `arrays` (host data again afterwards). */
  private run(arrays: readonly Float32Array[], mirrored: readonly KvPool[], endStep: boolean): void {
    const request = this.request;
    this.request = emptyRequest();
    const reads: [number, number][] = [];
    const readArrays: Float32Array[] = [];
    for (const array of arrays) {
      const id = this.regions.find(array);
      if (id === undefined) continue; // already host data
      this.checkMaterialized(id);
      reads.push([id, array.length]);
      readArrays.push(array);
    }
    const readPools = mirrored.map((pool) => this.pool(pool));
    request.pools.push(...this.request.pools.splice(0));
    Object.assign(request, { reads, readPools, endStep, freeWeights: this.freedWeights.splice(0), freePools: this.freedPools.splice(0) });
    if (endStep) {
      this.regions.clear();
      this.lengths.clear();
      this.fusedAway.clear();
      this.epoch++;
    } else {
      for (const array of readArrays) this.regions.forget(array);
    }
    const worthSending = request.ops.length > 0 || reads.length > 0 || readPools.length > 0 || endStep;
    if (!worthSending) return;
    this.submissions++;
    const sent = performance.now();
    // The uploads are this recorder's own copies: move them rather than copy them again.
    const reply = this.channel.call(request, request.uploads.map(([, data]) => data.buffer as ArrayBuffer));
    this.count(sent, reply.timings);
    readArrays.forEach((array, i) => array.set(reply.reads?.[i] ?? []));
    mirrored.forEach((pool, i) => {
      const bytes = reply.pools?.[i];
      if (bytes) new Uint8Array(pool.data.buffer, pool.data.byteOffset, pool.data.byteLength).set(new Uint8Array(bytes, 0, pool.data.byteLength));
    });
  }

  private count(sent: number, worker: RunTimings | undefined): void {
    const t = this.timings;
    t.runs++;
    t.recordMs += sent - (this.recordingSince ?? sent);
    t.roundTripMs += performance.now() - sent;
    t.dispatches += worker?.dispatches ?? 0;
    t.encodeMs += worker?.encodeMs ?? 0;
    t.waitMs += worker?.waitMs ?? 0;
    addKernelTimes(t.kernels, worker?.kernels);
    this.recordingSince = undefined;
  }

  private tensor(floats: number): number {
    const id = this.nextTensor++;
    this.lengths.set(id, floats);
    this.request.tensors.push([id, floats]);
    return id;
  }
}

function emptyRequest(): RunRequest {
  return { kind: 'run', tensors: [], uploads: [], pools: [], ops: [], reads: [], readPools: [], endStep: false, freeWeights: [], freePools: [] };
}
