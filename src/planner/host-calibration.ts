/**
 * A CPU host's hardware profile from Tessera's own measurements on it: the
 * STREAM triad, engine decode and prefill, the kernels' peak rates, a
 * single-thread decode, tp 2 and pp 2 decodes, and the serving runs. Each
 * constant is one formula over those numbers, using the planner's own byte
 * and FLOP counts, so the profile and the cost model agree by construction
 * where they should and the self-consistency test checks the rest.
 */
import type { HardwareSpec } from './hardware.js';
import { pipelineStages } from './layout.js';
import { attentionFlopsPerPosition, attentionParameterGroups, sumParameters, swigluParameterGroups, type ModelShape } from './model-shape.js';
import type { WeightDtype } from './precision.js';
import { stageWeightBytes, vocabularyBytes } from './rank-weights.js';

export interface HostMeasurements {
  readonly name: string;
  readonly description: string;
  readonly cores: number;
  readonly memoryGiB: number;
  /** The model every run used (TinyLlama-1.1B shape here). */
  readonly shape: ModelShape;
  /** Engine decodes (one thread per core): tok/s and the best STREAM triad of the same run. */
  readonly decodes: readonly { readonly weights: WeightDtype; readonly tokensPerSecond: number; readonly triadGBs: number }[];
  /** Engine prefills: prompt length and tok/s. */
  readonly prefills: readonly { readonly weights: WeightDtype; readonly promptLength: number; readonly tokensPerSecond: number }[];
  /** Best batched matmul rates of the kernels benchmark, GOP/s: 8-bit dot products and f16. */
  readonly kernelInt8Gops: number;
  readonly kernelF16Gops: number;
  /** Q8_0 decode of one process with one thread, tok/s. */
  readonly singleThreadDecode: number;
  /** Q8_0 decode at tp 2 (two ranks, one thread each): waiting per token on the reporting rank. */
  readonly tensorParallelWaitMsPerToken: number;
  /** Q8_0 decode at pp 2 (two ranks, one thread each), tok/s. */
  readonly pipelineDecode: number;
  /** pp 2 with one sequence per micro-batch, `sequences` of them in flight (both stages busy), tok/s. */
  readonly pipelineAllInFlight: { readonly sequences: number; readonly tokensPerSecond: number };
  /** Serving runs (Q8_0, HTTP, 16-token prompts): TPOT at 1 and 16 streams, ms. */
  readonly serveTpotMs: { readonly c1: number; readonly c16: number };
  /** All-reduce bus bandwidth between two local ranks, GB/s (bench comm, 4 MiB): Unix sockets and TCP. */
  readonly unixAllReduceGBs: number;
  readonly tcpAllReduceGBs: number;
  /** Where each number came from. */
  readonly sources: Readonly<Record<string, string>>;
}

const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

/** Bytes one decode token reads: every matrix but the embedding (a row lookup). */
export function decodeBytesPerToken(shape: ModelShape, weights: WeightDtype): number {
  const [stage] = pipelineStages(shape, 1);
  const layout = { tp: 1, pp: 1, ep: 1, dp: 1 };
  return stageWeightBytes(shape, stage, weights, layout) - vocabularyBytes(shape, weights, 'embedding', 1);
}

/** Matmul FLOPs per prompt token (the head runs for the last token only) and attention FLOPs at mean context. */
function prefillFlopsPerToken(shape: ModelShape, promptLength: number): { matmul: number; attention: number } {
  const layer = sumParameters(attentionParameterGroups(shape)) + sumParameters(swigluParameterGroups(shape.hiddenSize, shape.intermediateSize));
  const matmul = 2 * layer * shape.numLayers + (2 * shape.vocabSize * shape.hiddenSize) / promptLength;
  return { matmul, attention: (attentionFlopsPerPosition(shape) * shape.numLayers * promptLength) / 2 };
}

/** Collectives of one tp decode token: two all-reduces a layer, the embedding's, and the logits' all-gather. */
function collectivesPerToken(shape: ModelShape): number {
  return 2 * shape.numLayers + 2;
}

export function calibrateHost(m: HostMeasurements): HardwareSpec {
  const shape = m.shape;
  const triad = mean(m.decodes.map((run) => run.triadGBs));
  const memory = mean(m.decodes.map((run) => (decodeBytesPerToken(shape, run.weights) * run.tokensPerSecond) / (run.triadGBs * 1e9)));
  const int8 = m.kernelInt8Gops / 1000;
  const f16 = m.kernelF16Gops / 1000;
  // Seconds per prompt token at the peaks, over the measured seconds per token.
  const compute = mean(
    m.prefills.map((run) => {
      const flops = prefillFlopsPerToken(shape, run.promptLength);
      return (flops.matmul / (int8 * 1e12) + flops.attention / (f16 * 1e12)) * run.tokensPerSecond;
    }),
  );
  const q8Bytes = decodeBytesPerToken(shape, 'q8_0');
  const coreBandwidth = (m.singleThreadDecode * q8Bytes) / memory / 1e9;
  const q8Decode = m.decodes.find((run) => run.weights === 'q8_0') ?? m.decodes[0];
  const engineStepMs = 1000 / q8Decode.tokensPerSecond;
  // The single-rank q8_0 step at the mean triad: what the HTTP path adds on top of it.
  const modelStepMs = (q8Bytes / (triad * memory * 1e9)) * 1000;
  const httpStepOverheadMs = m.serveTpotMs.c1 - modelStepMs;
  // 16 decodes: compute-bound; what is left after the matmuls and the HTTP path is per-sequence work.
  const c16ComputeMs = ((16 * 2 * (q8Bytes / (34 / 32))) / (int8 * compute * 1e12)) * 1000;
  const sequenceOverheadMs = Math.max(0, (m.serveTpotMs.c16 - httpStepOverheadMs - c16ComputeMs) / 16);
  // pp 2, one sequence: one stage at a time, each with a whole core's bandwidth.
  const stageMs = (q8Bytes / 2 / (coreBandwidth * memory * 1e9)) * 1000;
  const rankStepOverheadMs = Math.max(0, (1000 / m.pipelineDecode - 2 * stageMs) / 2);
  const latencyUs = (m.tensorParallelWaitMsPerToken / collectivesPerToken(shape)) * 1000;
  // Both stages busy, one sequence per micro-batch: each stage step streams its half at its share of the host,
  // and what the iteration takes beyond the stages' steps is the driver's work per micro-batch.
  const busyStageMs = (q8Bytes / 2 / (Math.min(coreBandwidth * memory, triad / 2) * 1e9)) * 1000 + rankStepOverheadMs;
  const flight = m.pipelineAllInFlight;
  const contendedStepOverheadMs = Math.max(0, ((flight.sequences * 1000) / flight.tokensPerSecond - flight.sequences * busyStageMs) / flight.sequences);
  return {
    name: m.name,
    description: m.description,
    kind: 'cpu',
    memoryGiB: m.memoryGiB,
    memoryBandwidthGBs: triad,
    compute: { f16, int8 },
    cores: m.cores,
    coreMemoryBandwidthGBs: coreBandwidth,
    devicesPerNode: 1,
    interconnect: { name: 'unix-socket-local', busBandwidthGBs: m.unixAllReduceGBs, latencyUs },
    network: { name: 'tcp-loopback', busBandwidthGBs: m.tcpAllReduceGBs, latencyUs },
    efficiency: { memory, compute, overlap: 2 },
    runtime: {
      name: 'Tessera native CPU backend',
      stepOverheadMs: Math.max(0, engineStepMs - modelStepMs * (triad / q8Decode.triadGBs)),
      sequenceOverheadMs,
      httpStepOverheadMs,
      rankStepOverheadMs,
      contendedStepOverheadMs,
      activationBytes: 4,
      memoryUtilization: 0.9,
      reservedGiB: 1,
      maxNumSeqs: 64,
      maxBatchTokens: 512,
    },
    sources: m.sources,
  };
}
