/**
 * The time one rank of one pipeline stage takes for one engine step over a
 * batch of tokens: a roofline per op (the larger of its bytes over the
 * memory bandwidth and its FLOPs over the compute rate), plus the
 * collectives tensor and expert parallelism put between the ops (not
 * overlapped), plus the runtime's per-step cost when ranks are processes.
 */
import { collectiveMs, groupLink } from './collectives.js';
import type { HardwareSpec } from './hardware.js';
import { kvBytesPerToken } from './kv-cache.js';
import type { Layout, Stage } from './layout.js';
import {
  attentionFlopsPerPosition,
  attentionParameterGroups,
  sumParameters,
  swigluParameterGroups,
  type ModelShape,
} from './model-shape.js';
import { weightComputeClass, type ComputeClass, type KvDtype, type WeightDtype } from './precision.js';
import type { RankResources } from './rank-resources.js';
import { attentionBytes, expertSliceBytes, expertsPerRank, swigluBytes, vocabularyBytes } from './rank-weights.js';

/** The tokens of one step on one stage (a micro-batch). */
export interface StepBatch {
  /** Sequences that decode one token each. */
  readonly decodeTokens: number;
  /** Mean positions a decode token attends to. */
  readonly decodeContext: number;
  /** Prompt tokens prefilled in this step. */
  readonly prefillTokens: number;
  /** Mean positions a prefill token attends to (about half its prompt, causally). */
  readonly prefillContext: number;
  /** Rows the LM head computes: decode tokens and prompts that finish in this step. */
  readonly logitRows: number;
}

export type OpName = 'matmul' | 'experts' | 'attention' | 'lm-head';

export interface OpTime {
  readonly op: OpName;
  readonly bytes: number;
  readonly flops: number;
  readonly ms: number;
  readonly bound: 'memory' | 'compute';
}

export interface StageTime {
  readonly ms: number;
  readonly ops: readonly OpTime[];
  readonly networkMs: number;
  readonly overheadMs: number;
}

export interface StageContext {
  readonly shape: ModelShape;
  readonly weights: WeightDtype;
  readonly kv: KvDtype;
  readonly layout: Layout;
  readonly stage: Stage;
  readonly hardware: HardwareSpec;
  readonly resources: RankResources;
  readonly ranksPerDevice: number;
}

/** One op's roofline time: the p-norm of its memory and compute times (hardware.ts, Efficiency). */
export function rooflineMs(memoryMs: number, computeMs: number, overlap: number): number {
  const high = Math.max(memoryMs, computeMs);
  if (high === 0) return 0;
  return high * ((memoryMs / high) ** overlap + (computeMs / high) ** overlap) ** (1 / overlap);
}

function roofline(c: StageContext, op: OpName, bytes: number, flops: number, computeClass: ComputeClass): OpTime {
  const memoryMs = bytes / c.resources.bytesPerMs;
  const computeMs = flops / c.resources.flopsPerMs(computeClass);
  const ms = rooflineMs(memoryMs, computeMs, c.hardware.efficiency.overlap);
  return { op, bytes, flops, ms, bound: computeMs > memoryMs ? 'compute' : 'memory' };
}

/** Expected experts of `perRank` a rank holds that at least one of `tokens` routes to (uniform routing). */
export function touchedExperts(shape: ModelShape, perRank: number, tokens: number): number {
  if (!shape.moe || tokens <= 0) return 0;
  const missProbability = (1 - shape.moe.numExpertsPerToken / shape.moe.numExperts) ** tokens;
  return perRank * (1 - missProbability);
}

function matmulOp(c: StageContext, tokens: number): OpTime {
  const { shape, stage, layout, weights } = c;
  const dense = stage.layers - stage.moeLayers;
  const shared = shape.moe && shape.moe.sharedIntermediateSize > 0 ? shape.moe.sharedIntermediateSize : 0;
  const bytes =
    stage.layers * attentionBytes(shape, weights, layout.tp) +
    dense * swigluBytes(shape, shape.intermediateSize, weights, layout.tp) +
    (shared > 0 ? stage.moeLayers * swigluBytes(shape, shared, weights, layout.tp) : 0);
  const parameters =
    stage.layers * sumParameters(attentionParameterGroups(shape)) +
    dense * sumParameters(swigluParameterGroups(shape.hiddenSize, shape.intermediateSize)) +
    (shared > 0 ? stage.moeLayers * sumParameters(swigluParameterGroups(shape.hiddenSize, shared)) : 0);
  return roofline(c, 'matmul', bytes, (2 * tokens * parameters) / layout.tp, weightComputeClass(weights));
}

function expertsOp(c: StageContext, tokens: number): OpTime | undefined {
  const { shape, stage, layout } = c;
  if (!shape.moe || stage.moeLayers === 0) return undefined;
  const touched = touchedExperts(shape, expertsPerRank(shape, layout), tokens);
  const bytes = stage.moeLayers * touched * expertSliceBytes(shape, c.weights, layout);
  const expertParameters = sumParameters(swigluParameterGroups(shape.hiddenSize, shape.moe.expertIntermediateSize));
  const flops = (2 * tokens * shape.moe.numExpertsPerToken * expertParameters * stage.moeLayers) / layout.tp;
  return roofline(c, 'experts', bytes, flops, weightComputeClass(c.weights));
}

function attentionOp(c: StageContext, batch: StepBatch): OpTime {
  const { shape, stage, layout } = c;
  const positions = batch.decodeTokens * batch.decodeContext + batch.prefillTokens * batch.prefillContext;
  // Decode reads every cached position; a prefill chunk's keys stay on chip, so it reads little beyond them.
  const bytes = (batch.decodeTokens * batch.decodeContext + batch.prefillTokens) * kvBytesPerToken(shape, stage, c.kv, layout.tp);
  const flops = (positions * attentionFlopsPerPosition(shape) * stage.layers) / layout.tp;
  return roofline(c, 'attention', bytes, flops, 'f16');
}

function headOp(c: StageContext, batch: StepBatch): OpTime | undefined {
  if (!c.stage.hasHead || batch.logitRows === 0) return undefined;
  const { shape, layout } = c;
  const flops = (2 * batch.logitRows * shape.vocabSize * shape.hiddenSize) / layout.tp;
  return roofline(c, 'lm-head', vocabularyBytes(shape, c.weights, 'head', layout.tp), flops, weightComputeClass(c.weights));
}

/** Collectives of one step: two all-reduces a layer (tp), two all-to-alls an MoE layer (ep), the embedding's all-reduce and the logits' gather. */
export function stageNetworkMs(c: StageContext, batch: StepBatch): number {
  const { shape, stage, layout, hardware } = c;
  const tokens = batch.decodeTokens + batch.prefillTokens;
  const hiddenBytes = tokens * shape.hiddenSize * hardware.runtime.activationBytes;
  const tpLink = groupLink(hardware, layout.tp, c.ranksPerDevice);
  let ms = 2 * stage.layers * collectiveMs(tpLink, 'all-reduce', hiddenBytes, layout.tp);
  if (stage.hasEmbedding) ms += collectiveMs(tpLink, 'all-reduce', hiddenBytes, layout.tp);
  if (stage.hasHead) ms += collectiveMs(tpLink, 'all-gather', batch.logitRows * shape.vocabSize * 4, layout.tp);
  if (shape.moe && layout.ep > 1) {
    // Each rank dispatches its 1/ep share of the tokens, one copy per distinct rank holding its experts, and combines them back.
    const ranksPerToken = layout.ep * (1 - (1 - 1 / layout.ep) ** shape.moe.numExpertsPerToken);
    const routed = (hiddenBytes / layout.ep) * ranksPerToken;
    ms += 2 * stage.moeLayers * collectiveMs(groupLink(hardware, layout.ep, c.ranksPerDevice), 'all-to-all', routed, layout.ep);
  }
  return ms;
}

export function stageStepTime(c: StageContext, batch: StepBatch): StageTime {
  const tokens = batch.decodeTokens + batch.prefillTokens;
  const ops = [matmulOp(c, tokens), expertsOp(c, tokens), attentionOp(c, batch), headOp(c, batch)].filter(
    (op): op is OpTime => op !== undefined,
  );
  const networkMs = stageNetworkMs(c, batch);
  const ranks = c.layout.tp * c.layout.pp;
  const overheadMs = ranks > 1 ? c.hardware.runtime.rankStepOverheadMs : 0;
  const opsMs = ops.reduce((sum, op) => sum + op.ms, 0);
  return { ms: opsMs + networkMs + overheadMs, ops, networkMs, overheadMs };
}
