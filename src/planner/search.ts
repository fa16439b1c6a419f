/**
 * `--search`: every layout of up to `maxDevices` devices the model can take
 * (tp and pp powers of two, ep 1 or tp for MoE models, the rest data
 * parallel), planned and filtered by TTFT/TPOT targets; ranked by output
 * throughput, or by fewest devices (then throughput).
 */
import { isTesseraError } from '../core/errors.js';
import type { Layout } from './layout.js';
import { planDeployment, type PlanInput, type PlanResult } from './plan.js';

export type SearchObjective = 'throughput' | 'devices';

export interface SearchTargets {
  readonly maxDevices: number;
  readonly objective: SearchObjective;
  readonly maxTtftMs?: number;
  readonly maxTpotMs?: number;
}

export interface Candidate {
  readonly layout: Layout;
  readonly result?: PlanResult;
  /** Why the layout was left out: it does not fit, or misses a target. */
  readonly rejected?: string;
}

function powersOfTwo(limit: number): number[] {
  const out: number[] = [];
  for (let value = 1; value <= limit; value *= 2) out.push(value);
  return out;
}

export function candidateLayouts(input: PlanInput, maxDevices: number): Layout[] {
  const layouts: Layout[] = [];
  for (const tp of powersOfTwo(maxDevices)) {
    for (const pp of powersOfTwo(maxDevices / tp)) {
      for (const ep of input.shape.moe && tp > 1 ? [1, tp] : [1]) {
        for (let dp = 1; tp * pp * dp <= maxDevices; dp++) layouts.push({ tp, pp, ep, dp });
      }
    }
  }
  return layouts;
}

function missedTarget(result: PlanResult, targets: SearchTargets): string | undefined {
  if (result.saturated || result.ttftMs === null) return 'arrivals outpace it';
  if (targets.maxTtftMs !== undefined && result.ttftMs > targets.maxTtftMs) return `TTFT ${result.ttftMs.toFixed(0)} ms > ${targets.maxTtftMs}`;
  if (targets.maxTpotMs !== undefined && result.tpotMs > targets.maxTpotMs) return `TPOT ${result.tpotMs.toFixed(1)} ms > ${targets.maxTpotMs}`;
  return undefined;
}

function evaluate(input: PlanInput, layout: Layout, targets: SearchTargets): Candidate {
  try {
    const result = planDeployment({ ...input, layout, devices: undefined });
    const missed = missedTarget(result, targets);
    return missed ? { layout, result, rejected: missed } : { layout, result };
  } catch (error) {
    if (isTesseraError(error)) return { layout, rejected: error.message };
    throw error;
  }
}

/** Accepted candidates first, best first; then the rejected ones with their reason. */
export function searchLayouts(input: PlanInput, targets: SearchTargets): Candidate[] {
  const all = candidateLayouts(input, targets.maxDevices).map((layout) => evaluate(input, layout, targets));
  const devices = (c: Candidate): number => c.result?.devices ?? Infinity;
  const throughput = (c: Candidate): number => c.result?.outputTokensPerSecond ?? 0;
  const accepted = all.filter((c) => !c.rejected);
  accepted.sort((a, b) => (targets.objective === 'devices' ? devices(a) - devices(b) || throughput(b) - throughput(a) : throughput(b) - throughput(a)));
  return [...accepted, ...all.filter((c) => c.rejected)];
}
