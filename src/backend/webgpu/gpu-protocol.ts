/**
 * The messages between the WebGPU backend (the caller's thread) and the GPU
 * thread that owns the device (gpu-thread.ts). Ops name tensors by number:
 * step tensors (activations, freed when the step ends), weights and KV pools
 * (kept until freed). Small index arrays travel inside the op.
 */
import type { DType } from '../../core/dtype.js';
import type { KvDtype } from '../../core/kv-dtype.js';
import type { KernelTime } from './kernel-profiler.js';

export type GpuOp =
  /** out [N, M] = x [N, K] · weightᵀ (accumulate: out += it) */
  | { op: 'matmul'; weight: number; x: number; out: number; numTokens: number; accumulate?: boolean }
  /** out [ids.length, cols] = rows `ids` of the weight, decoded */
  | { op: 'embed'; weight: number; ids: Int32Array; out: number }
  | { op: 'rmsNorm'; x: number; weight: number; out: number; rows: number; dim: number; eps: number }
  /** x [rows, dim] += bias [dim] */
  | { op: 'addBias'; x: number; bias: number; n: number; dim: number }
  /** x [numTokens, numHeads, headDim] rotated by table [numTokens, halfDims, 2] (cos, sin) */
  | {
      op: 'rope'; x: number; table: number; numTokens: number; numHeads: number; headDim: number; halfDims: number; adjacent: boolean;
      /** A second tensor [numTokens, numHeads2, headDim] rotated by the same table in the same dispatch. */
      x2?: number; numHeads2?: number;
    }
  /** Rows of keys/values [numTokens, rowSize] to slots rowSlot[row] (-1: none) of both pools (valuePool -1: keys only). */
  | { op: 'writeKv'; keyPool: number; valuePool: number; keys: number; values: number; rowSlot: Int32Array; rowSize: number }
  | {
      op: 'attention';
      query: number;
      keyPool: number;
      valuePool: number;
      /** [numTokens, 2] position (-1: row in no segment) and offset of its block table in blockTables */
      rowInfo: Int32Array;
      blockTables: Int32Array;
      out: number;
      numHeads: number;
      numKvHeads: number;
      headDim: number;
      scale: number;
    }
  | { op: 'siluMul'; gate: number; up: number; out: number; n: number }
  /** out [N, M] = silu(x · gateᵀ) · (x · upᵀ), gate and up of one dtype and shape */
  | { op: 'matmulGated'; gate: number; up: number; x: number; out: number; numTokens: number }
  /** a += b */
  | { op: 'add'; a: number; b: number; n: number }
  /** out [rows.length, rowSize] = rows of x */
  | { op: 'gather'; x: number; rows: Int32Array; out: number; rowSize: number }
  | { op: 'copy'; src: number; dst: number; n: number };

export interface PoolSpec {
  id: number;
  dtype: KvDtype;
  blockSize: number;
  numKvHeads: number;
  headDim: number;
  /** Elements ([numBlocks, blockSize, numKvHeads, headDim]). */
  elements: number;
  /** The pool's contents to start from (f32 values or half bits). */
  data: Float32Array | Uint16Array;
}

export interface RunRequest {
  kind: 'run';
  /** New step tensors: [id, float count]. */
  tensors: [number, number][];
  /** Host data for step tensors, written before the ops run. */
  uploads: [number, Float32Array][];
  pools: PoolSpec[];
  ops: GpuOp[];
  /** Step tensors whose values come back: [id, float count]. */
  reads: [number, number][];
  /** Pools whose contents come back (synchronous mode mirrors them to the host). */
  readPools: number[];
  /** Free the step's tensors after this run. */
  endStep: boolean;
  /**
   * Sent while the caller still records the step, with no reply: its ops are
   * encoded into the step's command buffer at once (overlapping the
   * recording), which the next whole request submits.
   */
  partial?: boolean;
  freeWeights: number[];
  freePools: number[];
}

export type WeightSource = { bytes: Uint8Array } | { path: string; byteOffset: number };

export interface LoadWeightRequest {
  kind: 'loadWeight';
  id: number;
  dtype: DType;
  rows: number;
  cols: number;
  source: WeightSource;
}

export interface OpenRequest {
  kind: 'open';
  /** Dawn toggles/flags for create(), e.g. 'backend=vulkan'. */
  flags: string[];
  powerPreference?: 'high-performance' | 'low-power';
  /** Refuse to hold more than this many bytes on the device (0: no budget of our own). */
  memoryBudget: number;
  /** Split weights in parts of at most this many bytes (0: the adapter's maxStorageBufferBindingSize); tests use it. */
  bindingLimit: number;
}

/** Times reading a buffer of `bytes` `repeats` times; → the best rate. */
export interface BandwidthRequest {
  kind: 'bandwidth';
  bytes: number;
  repeats: number;
}

export type GpuRequest = OpenRequest | LoadWeightRequest | RunRequest | BandwidthRequest | { kind: 'stats' } | { kind: 'close' };

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** 0 where the adapter does not say. */
  subgroupMinSize: number;
  subgroupMaxSize: number;
  features: string[];
  limits: Record<string, number>;
}

export interface GpuMemoryStats {
  weightBytes: number;
  poolBytes: number;
  activationBytes: number;
  budget: number;
}

/** Where a run's time went on the GPU thread. */
export interface RunTimings {
  dispatches: number;
  /** Preparing and recording the dispatches (bind groups, parameters) and submitting. */
  encodeMs: number;
  /** Submit to results mapped (the device's work and the readback). */
  waitMs: number;
  /** Device time per kernel label, when profiling (TESSERA_WEBGPU_PROFILE=1). */
  kernels?: Record<string, KernelTime>;
}

export type GpuReply =
  | { ok: true; adapter?: AdapterDescription; reads?: Float32Array[]; pools?: ArrayBuffer[]; stats?: GpuMemoryStats; bytesPerSecond?: number; timings?: RunTimings }
  | { ok: false; code: string; message: string };
