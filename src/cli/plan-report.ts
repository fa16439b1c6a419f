/** The terminal text of `tessera plan`: the prediction, the what-if table, the search ranking. */
import type { PlanInput, PlanResult } from '../planner/plan.js';
import type { Candidate } from '../planner/search.js';
import type { Sensitivity } from '../planner/what-if.js';

const ms = (value: number | null): string => (value === null ? 'unbounded' : value >= 100 ? `${value.toFixed(0)} ms` : `${value.toFixed(1)} ms`);
const rate = (value: number): string => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
const percent = (value: number | null): string => (value === null ? 'n/a' : `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)}%`);

function layoutText(result: PlanResult): string {
  const { tp, pp, ep, dp } = result.layout;
  return [`tp ${tp}`, pp > 1 ? `pp ${pp}` : '', ep > 1 ? `ep ${ep}` : '', dp > 1 ? `dp ${dp}` : ''].filter(Boolean).join(' ');
}

function workloadText(input: PlanInput): string {
  const w = input.workload;
  const lengths = `${w.inputLength} in / ${w.outputLength} out`;
  switch (w.arrival.kind) {
    case 'closed':
      const n = w.arrival.concurrency;
      return `${lengths}, ${n} ${w.burst ? `request${n === 1 ? '' : 's'} starting together` : `concurrent client${n === 1 ? '' : 's'}`}`;
    case 'poisson':
      return `${lengths}, Poisson arrivals at ${w.arrival.qps} req/s`;
    case 'max':
      return `${lengths}, offline (as many sequences as fit)`;
  }
}

const BOTTLENECK_WORDS: Record<PlanResult['bottleneck'], string> = {
  'memory-bandwidth': 'memory bandwidth (streaming weights and KV cache)',
  compute: 'compute (matrix multiplies)',
  network: 'the network (collectives between ranks)',
  overhead: 'runtime overhead (host work per step)',
  'pipeline-bubble': 'pipeline bubbles (stages waiting for each other)',
};

export function planText(input: PlanInput, result: PlanResult): string {
  const step = result.decodeStep;
  const share = (part: number): string => `${((part / step.ms) * 100).toFixed(0)}%`;
  const lines = [
    `${input.shape.name} on ${result.devices} × ${input.hardware.name} (${layoutText(result)}), ${input.weights} weights, ${input.kv} KV cache`,
    `workload: ${workloadText(input)}`,
    '',
    `  TTFT ${ms(result.ttftMs)}   TPOT ${ms(result.tpotMs)}   output ${rate(result.outputTokensPerSecond)} tok/s (${rate(result.requestsPerSecond)} req/s)${result.saturated ? '   SATURATED: arrivals outpace the deployment' : ''}`,
    `  memory per device ${result.memoryPerDeviceGiB.toFixed(1)} GiB (weights ${result.weightsPerDeviceGiB.toFixed(1)} GiB, KV cache for ${result.kvCacheTokens} tokens)`,
    `  batch ${rate(result.batch)} sequences (limited by ${result.batchLimit})`,
    `  decode step ${ms(step.ms)}: memory ${share(step.memoryMs)}, compute ${share(step.computeMs)}, network ${share(step.networkMs)}, overhead ${share(step.overheadMs)}, bubble ${share(step.bubbleMs)}`,
    `  bottleneck: ${BOTTLENECK_WORDS[result.bottleneck]}`,
  ];
  return `${lines.join('\n')}\n`;
}

export function whatIfText(base: PlanResult, rows: readonly Sensitivity[]): string {
  const header = ['knob', 'factor', 'TTFT', 'TPOT', 'output tok/s'];
  const table = [
    header,
    ['(base)', '1x', ms(base.ttftMs), ms(base.tpotMs), rate(base.outputTokensPerSecond)],
    ...rows.map((row) => [
      row.knob,
      `${row.factor}x`,
      `${ms(row.result.ttftMs)} (${percent(row.change.ttftMs)})`,
      `${ms(row.result.tpotMs)} (${percent(row.change.tpotMs)})`,
      `${rate(row.result.outputTokensPerSecond)} (${percent(row.change.outputTokensPerSecond)})`,
    ]),
  ];
  const widths = header.map((_, column) => Math.max(...table.map((line) => line[column].length)));
  return `${table.map((line) => line.map((cell, column) => cell.padEnd(widths[column])).join('  ')).join('\n')}\n`;
}

export function searchText(candidates: readonly Candidate[], limit = 10): string {
  const accepted = candidates.filter((c) => !c.rejected && c.result);
  if (accepted.length === 0) {
    const reasons = [...new Set(candidates.map((c) => c.rejected))].slice(0, 5).join('; ');
    return `no layout meets the targets (${reasons})\n`;
  }
  const lines = accepted.slice(0, limit).map((c, index) => {
    const r = c.result as PlanResult;
    return `${String(index + 1).padStart(3)}. ${layoutText(r).padEnd(22)} ${String(r.devices).padStart(3)} devices  ${rate(r.outputTokensPerSecond).padStart(9)} tok/s  TTFT ${ms(r.ttftMs).padStart(10)}  TPOT ${ms(r.tpotMs).padStart(9)}  ${r.bottleneck}`;
  });
  return `${lines.join('\n')}\n`;
}
