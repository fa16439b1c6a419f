/**
 * The hardware profile `tessera plan --hardware this-machine` reads, from a
 * profile run: this host's measured limits and the efficiencies its own
 * decode and prefill reached, over a base profile (the development
 * machine's) for what one run does not measure (serving and mesh overheads).
 */
import type { HardwareSpec } from '../planner/hardware.js';
import type { Profile } from './profile-report.js';

export interface HostFacts {
  readonly cores: number;
  readonly memoryGiB: number;
  readonly description: string;
}

export function hardwareFromProfile(base: HardwareSpec, profile: Profile, host: HostFacts, date: string): HardwareSpec {
  const rank0 = profile.phases.filter((phase) => phase.rank === 0);
  const decode = rank0.find((phase) => phase.phase === 'decode');
  const prefill = rank0.find((phase) => phase.phase === 'prefill');
  const limits = profile.limits;
  // Prefill: FLOPs per second reached over the matmul rate of the format that did most of them.
  let computeFraction = base.efficiency.compute;
  if (prefill) {
    const flops = prefill.ops.reduce((sum, op) => sum + op.achievedGflops * op.ms, 0);
    const ms = prefill.msPerToken * prefill.tokens;
    const peak = prefill.ops.some((op) => /q\d/.test(op.key)) ? limits.int8Gflops : limits.f16Gflops;
    if (ms > 0) computeFraction = Math.min(1, flops / ms / peak);
  }
  return {
    ...base,
    name: 'this-machine',
    description: host.description,
    memoryGiB: host.memoryGiB,
    memoryBandwidthGBs: limits.memoryBandwidthGBs,
    compute: { f16: limits.f16Gflops / 1000, int8: limits.int8Gflops / 1000 },
    cores: host.cores,
    // One core's stream is not measured here: the base profile's share of its triad.
    coreMemoryBandwidthGBs: ((base.coreMemoryBandwidthGBs ?? base.memoryBandwidthGBs) / base.memoryBandwidthGBs) * limits.memoryBandwidthGBs,
    efficiency: { ...base.efficiency, memory: decode ? Math.min(1, decode.bandwidthFraction) : base.efficiency.memory, compute: computeFraction },
    sources: {
      ...base.sources,
      profile: `tessera profile, ${date}: triad, matmul rates, decode bandwidth fraction and prefill compute fraction measured in one run; serving and mesh overheads are ${base.name}'s`,
    },
  };
}
