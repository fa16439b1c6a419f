/**
 * A device as the cost model sees it: memory (size, bandwidth), dense compute
 * rates per number format, the links between devices, how close a serving
 * runtime comes to those peaks on it (efficiency derates), and the runtime's
 * fixed costs per step. Peaks come from spec sheets; derates and overheads
 * from published measurements (docs/planner.md names the source of
 * every number), or for this machine from its own benchmark JSON.
 */
import type { ComputeClass } from './precision.js';

/**
 * How close a serving runtime comes to the peaks: `memory` and `compute` are
 * the fractions of bandwidth and FLOP rate its kernels reach; `overlap` is how
 * well a kernel hides one behind the other. An op's time is the p-norm
 * (memoryMs^p + computeMs^p)^(1/p) with p = overlap: p → ∞ is the ideal
 * roofline max(memory, compute); p = 1 adds them. Only ops near the ridge
 * point feel it (at 3× off the ridge p = 2 adds 5%).
 */
export interface Efficiency {
  readonly memory: number;
  readonly compute: number;
  readonly overlap: number;
}

/** A link type between devices, priced α–β: a message of S bytes takes latency + S / bandwidth. */
export interface LinkSpec {
  readonly name: string;
  /**
   * Bus bandwidth per device in GB/s, in nccl-tests' convention: a collective
   * of S bytes over n devices moves S × factor bytes over each device's link
   * (all-reduce 2(n−1)/n, all-gather and all-to-all (n−1)/n, point-to-point 1),
   * and this is the rate at which it does so for large messages.
   */
  readonly busBandwidthGBs: number;
  /** Time of one small collective or message (α), microseconds. */
  readonly latencyUs: number;
}

/** Dense peak rates per device, TFLOPS (TOPS for int8). */
export interface ComputeRates {
  readonly f16: number;
  readonly fp8?: number;
  readonly fp4?: number;
  readonly int8?: number;
}

/** The serving runtime's costs on this device: what a step costs beyond its kernels. */
export interface RuntimeCosts {
  /** Who these numbers describe (e.g. "vLLM / TensorRT-LLM class", "Tessera native CPU backend"). */
  readonly name: string;
  /** Host time per engine step that the device does not overlap (scheduling, launch, sampling), ms. */
  readonly stepOverheadMs: number;
  /** Extra host time per sequence in the step (sampling, detokenizing, streaming), ms. */
  readonly sequenceOverheadMs: number;
  /** Extra time per step when requests come through the HTTP server on the same host, ms. */
  readonly httpStepOverheadMs: number;
  /** Time per stage step when ranks are separate processes (step messages, the driver's loop), ms. */
  readonly rankStepOverheadMs: number;
  /**
   * CPU hosts: the driver's work per micro-batch (results, sampling, the next
   * step's message) when a pipeline keeps every core busy, so that work takes
   * cores from the ranks instead of running on an idle one, ms.
   */
  readonly contendedStepOverheadMs: number;
  /** Bytes of one activation element on the wire (bf16: 2, Tessera's f32: 4). */
  readonly activationBytes: number;
  /** Fraction of device memory the runtime may fill with weights and KV cache. */
  readonly memoryUtilization: number;
  /** Memory kept for activations, workspaces and the runtime itself, GiB per device. */
  readonly reservedGiB: number;
  /** Most sequences one replica runs at once (vLLM's max_num_seqs). */
  readonly maxNumSeqs: number;
  /** Most prompt tokens one step prefills (vLLM's max_num_batched_tokens; the chunk size). */
  readonly maxBatchTokens: number;
}

export interface HardwareSpec {
  readonly name: string;
  readonly description: string;
  /** `cpu`: ranks on one device share its cores and memory bandwidth. */
  readonly kind: 'gpu' | 'cpu' | 'unified';
  readonly memoryGiB: number;
  /** Peak memory read bandwidth per device, GB/s (for CPUs: the STREAM triad). */
  readonly memoryBandwidthGBs: number;
  readonly compute: ComputeRates;
  /** CPU devices: cores, which ranks on the device divide among them. */
  readonly cores?: number;
  /** CPU devices: what one core streams alone, GB/s (a core cannot reach the whole triad). */
  readonly coreMemoryBandwidthGBs?: number;
  readonly devicesPerNode: number;
  /** The link between devices of a node. */
  readonly interconnect: LinkSpec;
  /** The link between nodes. */
  readonly network: LinkSpec;
  readonly efficiency: Efficiency;
  readonly runtime: RuntimeCosts;
  /** Where each number comes from (field path → source). */
  readonly sources: Readonly<Record<string, string>>;
}

/** The peak rate for a compute class, falling back to f16 where the device has no dedicated rate. */
export function peakTflops(hardware: HardwareSpec, computeClass: ComputeClass): number {
  return hardware.compute[computeClass] ?? hardware.compute.f16;
}

/** Knobs of `--what-if`: multipliers on one part of the hardware. */
export const HARDWARE_KNOBS = ['memory-bandwidth', 'compute', 'link-bandwidth', 'link-latency', 'memory-capacity', 'overhead'] as const;
export type HardwareKnob = (typeof HARDWARE_KNOBS)[number];

function scaleLink(link: LinkSpec, bandwidth: number, latency: number): LinkSpec {
  return { ...link, busBandwidthGBs: link.busBandwidthGBs * bandwidth, latencyUs: link.latencyUs * latency };
}

/** The hardware with one knob multiplied by `factor` (link-latency 0.5×: half the latency). */
export function scaleHardware(hardware: HardwareSpec, knob: HardwareKnob, factor: number): HardwareSpec {
  switch (knob) {
    case 'memory-bandwidth':
      return {
        ...hardware,
        memoryBandwidthGBs: hardware.memoryBandwidthGBs * factor,
        coreMemoryBandwidthGBs: hardware.coreMemoryBandwidthGBs === undefined ? undefined : hardware.coreMemoryBandwidthGBs * factor,
      };
    case 'compute': {
      const c = hardware.compute;
      const times = (value: number | undefined): number | undefined => (value === undefined ? undefined : value * factor);
      return { ...hardware, compute: { f16: c.f16 * factor, fp8: times(c.fp8), fp4: times(c.fp4), int8: times(c.int8) } };
    }
    case 'link-bandwidth':
      return { ...hardware, interconnect: scaleLink(hardware.interconnect, factor, 1), network: scaleLink(hardware.network, factor, 1) };
    case 'link-latency':
      return { ...hardware, interconnect: scaleLink(hardware.interconnect, 1, factor), network: scaleLink(hardware.network, 1, factor) };
    case 'memory-capacity':
      return { ...hardware, memoryGiB: hardware.memoryGiB * factor };
    case 'overhead': {
      const r = hardware.runtime;
      return {
        ...hardware,
        runtime: {
          ...r,
          stepOverheadMs: r.stepOverheadMs * factor,
          sequenceOverheadMs: r.sequenceOverheadMs * factor,
          httpStepOverheadMs: r.httpStepOverheadMs * factor,
          rankStepOverheadMs: r.rankStepOverheadMs * factor,
          contendedStepOverheadMs: r.contendedStepOverheadMs * factor,
        },
      };
    }
  }
}
