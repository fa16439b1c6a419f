/**
 * Turns the ops of a run into dispatches of one compute pass: for each op, its
 * pipeline, the buffers it binds (weights split in parts of at most
 * maxStorageBufferBindingSize run one dispatch per part), its parameters in
 * the run's arena, and its workgroup counts. Prepared in two phases because
 * the arena's buffer exists only once every op has added its pieces.
 */
import { TesseraError } from '../../core/errors.js';
import { reductionLeafSize } from '../backend.js';
import type { GpuArena, ArenaSlice } from './gpu-arena.js';
import type { BindGroupCache } from './bind-group-cache.js';
import type { GpuOp } from './gpu-protocol.js';
import type { PipelineCache, PipelineKey } from './gpu-pipelines.js';
import { MATMUL_MAX_ROUNDS, MATMUL_THREADS } from './kernels/matmul.wgsl.js';
import { ATTENTION_MAX_HEAD_DIM } from './kernels/attention.wgsl.js';
import type { DType } from '../../core/dtype.js';
import type { KvDtype } from '../../core/kv-dtype.js';

export interface WeightPart {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
}

export interface GpuWeight {
  dtype: DType;
  rows: number;
  cols: number;
  rowBytes: number;
  parts: WeightPart[];
}

export interface GpuPool {
  buffer: GPUBuffer;
  dtype: KvDtype;
  blockSize: number;
  numKvHeads: number;
  headDim: number;
}

/** What the encoder reads from the runtime. */
export interface EncoderContext {
  pipelines: PipelineCache;
  tensor(id: number): GPUBuffer;
  weight(id: number): GpuWeight;
  pool(id: number): GpuPool;
  /** [P] canonical slots of a row of `leaves` leaves, on the device. */
  slots(leaves: number): GPUBuffer;
  /** Invocations that share a matmul row on this device, and whether they fold by subgroup shuffles. */
  matmulLanes: { lanes: number; shuffles: boolean };
  /** A small buffer standing in for an unused writable binding. */
  standIn: GPUBuffer;
}

type Binding = GPUBuffer | { arena: ArenaSlice };

interface Dispatch {
  key: PipelineKey;
  bindings: Binding[];
  groups: [number, number, number];
}

/** The dispatches of one op, its pieces added to `arena`. */
export function prepareOp(op: GpuOp, context: EncoderContext, arena: GpuArena): Dispatch[] {
  const t = (id: number) => context.tensor(id);
  switch (op.op) {
    case 'matmul': return prepareMatmul(op, context, arena);
    case 'matmulGated': return prepareMatmul({ op: 'matmul', weight: op.gate, x: op.x, out: op.out, numTokens: op.numTokens }, context, arena, op.up);
    case 'embed': {
      const w = context.weight(op.weight);
      if (op.ids.length === 0) return [];
      const ids = { arena: arena.ints(op.ids) };
      return w.parts.map((part) => ({
        key: { kind: 'embed', dtype: w.dtype },
        bindings: [part.buffer, ids, t(op.out), { arena: arena.params([w.cols, op.ids.length, part.rowStart, part.rows, w.rowBytes]) }],
        groups: linearGroups(Math.ceil(w.cols / 4) * op.ids.length),
      }));
    }
    case 'rmsNorm': {
      const w = context.weight(op.weight);
      if (op.rows === 0) return [];
      return [{
        key: { kind: 'rmsNorm' },
        bindings: [t(op.x), w.parts[0].buffer, t(op.out), { arena: arena.params([op.dim, op.rows, op.eps], [2]) }],
        groups: rowGroups(op.rows, 1),
      }];
    }
    case 'addBias':
      return op.n === 0 ? [] : [{ key: { kind: 'addBias' }, bindings: [t(op.x), context.weight(op.bias).parts[0].buffer, { arena: arena.params([op.n, op.dim]) }], groups: linearGroups(op.n) }];
    case 'rope': {
      const heads2 = op.x2 === undefined ? 0 : (op.numHeads2 ?? 0);
      const n = op.numTokens * (op.numHeads + heads2) * op.halfDims;
      const params = arena.params([op.numTokens, op.numHeads, op.headDim, op.halfDims, op.adjacent ? 1 : 0, heads2]);
      const second = op.x2 === undefined ? context.standIn : t(op.x2);
      return n === 0 ? [] : [{ key: { kind: 'rope' }, bindings: [t(op.x), t(op.table), { arena: params }, second], groups: linearGroups(n) }];
    }
    case 'writeKv': {
      const pool = context.pool(op.keyPool);
      const n = op.rowSlot.length * op.rowSize;
      if (n === 0) return [];
      return [{
        key: { kind: 'writeKv', dtype: pool.dtype },
        bindings: [
          pool.buffer, op.valuePool < 0 ? context.standIn : context.pool(op.valuePool).buffer, t(op.keys), t(op.values),
          { arena: arena.ints(op.rowSlot) }, { arena: arena.params([op.rowSlot.length, op.rowSize, op.valuePool < 0 ? 0 : 1]) },
        ],
        groups: linearGroups(n),
      }];
    }
    case 'attention': {
      const pool = context.pool(op.keyPool);
      const numTokens = op.rowInfo.length / 2;
      if (numTokens === 0) return [];
      if (op.headDim > ATTENTION_MAX_HEAD_DIM) {
        throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `the WebGPU attention kernel takes heads of up to ${ATTENTION_MAX_HEAD_DIM} dims, not ${op.headDim}`);
      }
      const params = arena.params([op.numHeads, op.numKvHeads, op.headDim, pool.blockSize, op.scale], [4]);
      return [{
        key: { kind: 'attention', dtype: pool.dtype },
        bindings: [t(op.query), pool.buffer, context.pool(op.valuePool).buffer, { arena: arena.ints(op.rowInfo) }, { arena: arena.ints(op.blockTables) }, t(op.out), { arena: params }],
        groups: [op.numHeads, numTokens, 1],
      }];
    }
    case 'siluMul': {
      if (op.n === 0) return [];
      const params = { arena: arena.params([op.n]) };
      if (op.out === op.gate) return [{ key: { kind: 'siluMulInPlace' }, bindings: [t(op.gate), t(op.up), params], groups: linearGroups(op.n) }];
      return [{ key: { kind: 'siluMul' }, bindings: [t(op.gate), t(op.up), t(op.out), params], groups: linearGroups(op.n) }];
    }
    case 'add':
      return op.n === 0 ? [] : [{ key: { kind: 'add' }, bindings: [t(op.a), t(op.b), { arena: arena.params([op.n]) }], groups: linearGroups(op.n) }];
    case 'gather': {
      const n = op.rows.length * op.rowSize;
      return n === 0 ? [] : [{ key: { kind: 'gather' }, bindings: [t(op.x), { arena: arena.ints(op.rows) }, t(op.out), { arena: arena.params([n, op.rowSize]) }], groups: linearGroups(n) }];
    }
    case 'copy':
      return op.n === 0 ? [] : [{ key: { kind: 'copy' }, bindings: [t(op.src), t(op.dst), { arena: arena.params([op.n]) }], groups: linearGroups(op.n) }];
  }
}

/** A matmul; with `up`, the gated one (silu(x·Wᵀ) · (x·upᵀ)), whose two weights share dtype, shape and parts. */
function prepareMatmul(op: Extract<GpuOp, { op: 'matmul' }>, context: EncoderContext, arena: GpuArena, up?: number): Dispatch[] {
  const w = context.weight(op.weight);
  const upWeight = up === undefined ? undefined : context.weight(up);
  if (op.numTokens === 0) return [];
  const leafSize = reductionLeafSize(w.dtype);
  const leaves = Math.ceil(w.cols / leafSize);
  let numSlots = 1;
  while (numSlots < leaves) numSlots *= 2;
  const { lanes, shuffles } = context.matmulLanes;
  const rounds = Math.max(1, numSlots / lanes);
  if (rounds > MATMUL_MAX_ROUNDS) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `the WebGPU matmul takes rows of up to ${lanes * MATMUL_MAX_ROUNDS * leafSize} elements, not ${w.cols}`);
  }
  const tokens = op.numTokens === 1 ? 1 : 8;
  const slots = context.slots(leaves);
  const x = context.tensor(op.x);
  const out = context.tensor(op.out);
  return w.parts.map((part, i) => ({
    key: { kind: 'matmul', dtype: w.dtype, tokens, lanes, shuffles, gated: upWeight !== undefined },
    bindings: [
      part.buffer, x, out, slots, { arena: arena.params([w.cols, part.rows, op.numTokens, w.rows, part.rowStart, w.rowBytes, leafSize, numSlots, rounds, op.accumulate ? 1 : 0]) },
      x, ...(upWeight ? [upWeight.parts[i].buffer] : []),
    ],
    groups: rowGroups(Math.ceil(part.rows / (MATMUL_THREADS / lanes)), Math.ceil(op.numTokens / tokens)),
  }));
}

/** Groups of 64 invocations over n elements, as the kernels index them (x + y · 65535 · 64). */
function linearGroups(n: number): [number, number, number] {
  const groups = Math.ceil(n / 64);
  return [Math.min(groups, 65535), Math.ceil(groups / 65535), 1];
}

/** One workgroup a row (row = y · 32768 + x), `z` deep. */
function rowGroups(rows: number, z: number): [number, number, number] {
  return [Math.min(rows, 32768), Math.ceil(rows / 32768), z];
}

/** Records the prepared dispatches into the pass, binding arena pieces in `arenaBuffer`. */
export function encodeDispatches(pass: GPUComputePassEncoder, pipelines: PipelineCache, groups: BindGroupCache, dispatches: Dispatch[], arenaBuffer: GPUBuffer): void {
  let current: GPUComputePipeline | undefined;
  for (const dispatch of dispatches) {
    const pipeline = pipelines.get(dispatch.key);
    const slices = dispatch.bindings.map((binding) =>
      binding instanceof GPUBuffer ? { buffer: binding } : { buffer: arenaBuffer, offset: binding.arena.offset, size: binding.arena.size },
    );
    if (pipeline !== current) pass.setPipeline(pipeline);
    current = pipeline;
    pass.setBindGroup(0, groups.get(pipeline, slices));
    pass.dispatchWorkgroups(...dispatch.groups);
  }
}
