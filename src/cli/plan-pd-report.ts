/** The terminal text of `tessera plan --pd`: each split weighed, the chosen one against colocated, and the verdict. */
import type { PdComparison, PdPlan } from '../planner/disaggregation.js';
import type { PlanInput } from '../planner/plan.js';

const ms = (value: number | null): string => (value === null ? 'unbounded' : value >= 100 ? `${value.toFixed(0)} ms` : `${value.toFixed(1)} ms`);

function row(plan: PdPlan): string {
  const split = `${plan.split.prefill}:${plan.split.decode}`.padEnd(7);
  const saturated = plan.saturated ? `   ${plan.saturated} pool saturated` : plan.bound ? `   ${plan.bound} pool at capacity` : '';
  return `  ${split} TTFT ${ms(plan.ttftMs).padStart(10)}   TPOT ${ms(plan.tpotMs).padStart(9)}   p99 gap ${ms(plan.p99GapMs).padStart(9)}   ${plan.outputTokensPerSecond.toFixed(1).padStart(8)} tok/s   prefill busy ${(plan.prefill.utilization * 100).toFixed(0).padStart(3)}%   decode batch ${plan.decode.batch.toFixed(1)}${saturated}`;
}

export function pdText(input: PlanInput, comparison: PdComparison): string {
  const { colocated, colocatedTail: tail, disaggregated: chosen } = comparison;
  const w = input.workload;
  const lines = [
    `${input.shape.name} on ${colocated.devices} × ${input.hardware.name}, ${input.weights} weights, ${input.kv} KV cache; ${w.inputLength} in / ${w.outputLength} out`,
    `colocated (${colocated.layout.dp} replicas): TTFT ${ms(colocated.ttftMs)}   TPOT ${ms(colocated.tpotMs)}   p99 gap ${ms(tail.p99GapMs)} (a step with a prompt chunk: ${ms(tail.stallMs)}, ${(tail.stallShare * 100).toFixed(1)}% of steps)   ${colocated.outputTokensPerSecond.toFixed(1)} tok/s${colocated.saturated ? '   SATURATED' : ''}`,
    'disaggregated (prefill:decode replicas):',
    ...comparison.candidates.map(row),
    '',
    `  a prompt alone on a prefill replica: ${ms(chosen.prefill.promptMs)}; a decode step of ${chosen.decode.batch.toFixed(1)} sequences: ${ms(chosen.decode.stepMs)}`,
    `disaggregation ${comparison.verdict}`,
  ];
  return `${lines.join('\n')}\n`;
}
