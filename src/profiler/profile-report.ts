/**
 * A profile of one run: per rank and phase, each token's time split by
 * category (the driver's time between steps included for the rank that
 * reports to it), each op's roofline verdict, the phase's bottleneck, and a
 * one-sentence summary naming the top bottleneck. Pure.
 */
import { opRoofline, type MachineLimits, type OpRoofline } from './roofline.js';
import { TIME_CATEGORIES, type Phase, type PhaseTotals, type TimeCategory } from './trace-attribution.js';

/** Wall time of each phase as the driver saw it (the engine's own timings). */
export interface RunTimings {
  readonly promptTokens: number;
  readonly generatedTokens: number;
  readonly prefillMs: number;
  readonly decodeMs: number;
}

export type PhaseBottleneck = 'memory-bandwidth' | 'compute' | 'network' | 'overhead';

export interface PhaseProfile {
  readonly rank: number;
  readonly phase: Phase;
  readonly tokens: number;
  /** Wall milliseconds per token (rank 0: as the driver measured; others: their steps). */
  readonly msPerToken: number;
  /** Milliseconds per token in each category, plus `driver` (time outside any step: sampling, scheduling, the driver's messages). */
  readonly breakdown: Record<TimeCategory | 'driver', number>;
  /** Weight and KV bytes each token reads, and that rate against the measured triad (the engine benchmark's decode/triad). */
  readonly bytesPerToken: number;
  readonly bandwidthGBs: number;
  readonly bandwidthFraction: number;
  readonly ops: readonly OpRoofline[];
  readonly bottleneck: PhaseBottleneck;
  /** The bottleneck's share of the token's time. */
  readonly share: number;
}

export interface Profile {
  readonly limits: MachineLimits;
  readonly phases: readonly PhaseProfile[];
  readonly summary: string;
}

function phaseWallMs(phase: Phase, timings: RunTimings): number {
  return phase === 'decode' ? timings.decodeMs : timings.prefillMs;
}

function bottleneckOf(ops: readonly OpRoofline[], breakdown: Record<TimeCategory | 'driver', number>, tokens: number): [PhaseBottleneck, number] {
  const parts: Record<PhaseBottleneck, number> = { 'memory-bandwidth': 0, compute: 0, network: 0, overhead: 0 };
  for (const op of ops) {
    const perToken = op.ms / tokens;
    if (op.verdict === 'memory-bound') parts['memory-bandwidth'] += perToken;
    else if (op.verdict === 'compute-bound') parts.compute += perToken;
    else parts.overhead += perToken;
  }
  parts.network += breakdown['communication-wait'];
  parts.overhead += breakdown['step-overhead'] + breakdown.driver;
  const total = Object.values(parts).reduce((a, b) => a + b, 0);
  const [name, value] = (Object.entries(parts) as [PhaseBottleneck, number][]).reduce((a, b) => (b[1] > a[1] ? b : a));
  return [name, total > 0 ? value / total : 0];
}

export function phaseProfile(totals: PhaseTotals, limits: MachineLimits, timings: RunTimings, reportingRank: number): PhaseProfile {
  const tokens = Math.max(1, totals.tokens);
  const wallMs = totals.rank === reportingRank ? Math.max(phaseWallMs(totals.phase, timings), totals.stepMs) : totals.stepMs;
  const breakdown = Object.fromEntries(TIME_CATEGORIES.map((name) => [name, totals.byCategory[name] / tokens])) as Record<TimeCategory | 'driver', number>;
  breakdown.driver = (wallMs - totals.stepMs) / tokens;
  const ops = [...totals.ops.values()].map((op) => opRoofline(op, limits)).sort((a, b) => b.ms - a.ms);
  const bytesPerToken = [...totals.ops.values()].reduce((sum, op) => sum + op.bytes, 0) / tokens;
  const msPerToken = wallMs / tokens;
  const bandwidthGBs = bytesPerToken / (msPerToken / 1000) / 1e9;
  const [bottleneck, share] = bottleneckOf(ops, breakdown, tokens);
  return {
    rank: totals.rank,
    phase: totals.phase,
    tokens: totals.tokens,
    msPerToken,
    breakdown,
    bytesPerToken,
    bandwidthGBs,
    bandwidthFraction: bandwidthGBs / limits.memoryBandwidthGBs,
    ops,
    bottleneck,
    share,
  };
}

const percent = (value: number): string => `${(value * 100).toFixed(0)}%`;

const BOTTLENECK_WORDS: Record<PhaseBottleneck, string> = {
  'memory-bandwidth': 'memory-bound',
  compute: 'compute-bound',
  network: 'network-bound',
  overhead: 'overhead-bound',
};

/** One sentence about the decode phase of the reporting rank (or prefill when nothing decoded). */
export function summarize(phases: readonly PhaseProfile[], limits: MachineLimits, reportingRank: number): string {
  const mine = phases.filter((p) => p.rank === reportingRank);
  const phase = mine.find((p) => p.phase === 'decode') ?? mine[0];
  if (!phase) return 'no steps were traced';
  const words = `${phase.phase === 'decode' ? 'Decode' : 'Prefill'} is ${BOTTLENECK_WORDS[phase.bottleneck]} (${percent(phase.share)} of each token's ${phase.msPerToken.toFixed(1)} ms)`;
  const memory = `each token reads ${(phase.bytesPerToken / 1e9).toFixed(3)} GB of weights and KV cache at ${phase.bandwidthGBs.toFixed(1)} GB/s, ${percent(phase.bandwidthFraction)} of the ${limits.memoryBandwidthGBs.toFixed(1)} GB/s triad measured in this run`;
  const wait = phase.breakdown['communication-wait'];
  const network = wait > 0 ? `; waiting for other ranks takes ${percent(wait / phase.msPerToken)} of rank ${phase.rank}'s token time (${wait.toFixed(1)} ms)` : '';
  return `${words}: ${memory}${network}.`;
}

export function buildProfile(totals: readonly PhaseTotals[], limits: MachineLimits, timings: RunTimings, reportingRank = 0): Profile {
  const phases = totals.map((t) => phaseProfile(t, limits, timings, reportingRank));
  return { limits, phases, summary: summarize(phases, limits, reportingRank) };
}
