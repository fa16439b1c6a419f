/**
 * How a model is split: tensor (tp), pipeline (pp), expert (ep) and data (dp)
 * parallelism, and which ranks share a device. On GPUs every rank owns a
 * device; on a CPU host the ranks of one device divide its cores and its
 * memory bandwidth, as Tessera's forked ranks do.
 */
import { TesseraError } from '../core/errors.js';
import { kvHeads, queryHeads, type ModelShape } from './model-shape.js';
import type { HardwareSpec } from './hardware.js';

export interface Layout {
  readonly tp: number;
  readonly pp: number;
  readonly ep: number;
  readonly dp: number;
}

/** One pipeline stage: its layers and whether it holds the embedding or the LM head. */
export interface Stage {
  readonly layers: number;
  /** Layers of this stage that run routed experts. */
  readonly moeLayers: number;
  readonly hasEmbedding: boolean;
  readonly hasHead: boolean;
}

export interface Placement {
  readonly layout: Layout;
  /** Devices the deployment uses (all replicas). */
  readonly devices: number;
  /** Ranks (processes) sharing one device: 1 on GPUs. */
  readonly ranksPerDevice: number;
  /** CPU devices: cores each rank computes with. */
  readonly threadsPerRank?: number;
}

export function ranksPerReplica(layout: Layout): number {
  return layout.tp * layout.pp;
}

function fail(message: string): never {
  throw new TesseraError('TESSERA_ERR_SHARD_CONSTRAINT', message);
}

/** Refuses a split the model cannot take, naming the constraint (as the mesh does). */
export function checkLayout(shape: ModelShape, layout: Layout): void {
  for (const [name, value] of Object.entries(layout)) {
    if (!Number.isInteger(value) || value < 1) fail(`--${name} must be a whole number ≥ 1, got ${value}`);
  }
  const heads = queryHeads(shape);
  if (heads % layout.tp !== 0) fail(`--tp ${layout.tp} must divide the ${heads} attention heads of ${shape.name}`);
  const kv = kvHeads(shape);
  if (kv % layout.tp !== 0 && layout.tp % kv !== 0) fail(`--tp ${layout.tp} must divide or be a multiple of the ${kv} KV heads of ${shape.name}`);
  if (layout.pp > shape.numLayers) fail(`--pp ${layout.pp} exceeds the ${shape.numLayers} layers of ${shape.name}`);
  if (layout.ep > 1) {
    if (!shape.moe) fail(`--ep ${layout.ep} needs a mixture-of-experts model; ${shape.name} is dense`);
    if (layout.tp % layout.ep !== 0) fail(`--ep ${layout.ep} must divide --tp ${layout.tp} (experts spread over a stage's tensor-parallel ranks)`);
    if (shape.moe.numExperts % layout.ep !== 0) fail(`--ep ${layout.ep} must divide the ${shape.moe.numExperts} experts of ${shape.name}`);
  }
}

/** Contiguous layer ranges, the first stages one layer longer when they do not divide evenly. */
export function pipelineStages(shape: ModelShape, pp: number): Stage[] {
  const base = Math.floor(shape.numLayers / pp);
  const extra = shape.numLayers % pp;
  const stages: Stage[] = [];
  let start = 0;
  for (let index = 0; index < pp; index++) {
    const layers = base + (index < extra ? 1 : 0);
    const dense = shape.moe ? Math.max(0, Math.min(start + layers, shape.moe.denseLayers) - start) : layers;
    stages.push({ layers, moeLayers: shape.moe ? layers - dense : 0, hasEmbedding: index === 0, hasHead: index === pp - 1 });
    start += layers;
  }
  return stages;
}

/**
 * Where the ranks go. GPUs: one rank a device, tp × pp × dp devices. CPU
 * hosts: the ranks spread over `devices` hosts (default one), dividing each
 * host's cores (or `threads` each when given).
 */
export function placeRanks(hardware: HardwareSpec, layout: Layout, devices?: number, threads?: number): Placement {
  const ranks = ranksPerReplica(layout) * layout.dp;
  if (hardware.kind !== 'cpu') {
    if (devices !== undefined && devices !== ranks) {
      fail(`--devices ${devices} does not match --tp ${layout.tp} × --pp ${layout.pp} × --dp ${layout.dp} = ${ranks} (one rank per ${hardware.name})`);
    }
    return { layout, devices: ranks, ranksPerDevice: 1 };
  }
  const hosts = devices ?? 1;
  const ranksPerDevice = Math.ceil(ranks / hosts);
  const cores = hardware.cores ?? 1;
  const threadsPerRank = threads ?? Math.max(1, Math.floor(cores / ranksPerDevice));
  if (threadsPerRank * ranksPerDevice > cores) {
    fail(`${ranksPerDevice} ranks × ${threadsPerRank} threads exceed the ${cores} cores of ${hardware.name}`);
  }
  return { layout, devices: hosts, ranksPerDevice, threadsPerRank };
}
