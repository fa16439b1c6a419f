/**
 * The public validation table (docs/planner-validation.md): published
 * measurements with their conditions, and the planner's prediction for each.
 * The table is the data: `parseValidationTable` reads its rows,
 * `predictRow` recomputes the prediction from the row's inputs, and the test
 * and scripts/planner-validation.mjs use both, so the document cannot drift
 * from the code.
 */
import { TesseraError } from '../core/errors.js';
import { catalogHardware } from './hardware-catalog.js';
import type { HardwareSpec } from './hardware.js';
import type { Layout } from './layout.js';
import { catalogModel } from './model-catalog.js';
import { planDeployment, type PlanInput } from './plan.js';
import { parseKvDtype, parseWeightDtype } from './precision.js';
import type { Arrival } from './workload.js';

export const TABLE_START = '<!-- validation-table:start -->';
export const TABLE_END = '<!-- validation-table:end -->';

export const METRICS = ['output tok/s', 'output tok/s/gpu', 'ttft ms', 'tpot ms', 'latency ms', 'decode tok/s', 'prefill tok/s'] as const;
export type Metric = (typeof METRICS)[number];

export interface ValidationRow {
  readonly id: string;
  readonly model: string;
  readonly hardware: string;
  readonly layout: string;
  readonly weights: string;
  readonly kv: string;
  readonly input: number;
  readonly output: number;
  readonly load: string;
  readonly options: string;
  readonly metric: Metric;
  readonly measured: number;
  readonly source: string;
  /** The cells as written (the last three are rewritten by the script). */
  readonly cells: readonly string[];
}

export const COLUMNS = ['#', 'model', 'hardware', 'layout', 'weights', 'kv', 'in', 'out', 'load', 'options', 'metric', 'measured', 'predicted', 'error', 'source'];

function bad(id: string, message: string): never {
  throw new TesseraError('TESSERA_ERR_BAD_CONFIG', `validation row ${id}: ${message}`);
}

const number = (text: string): number => Number(text.replace(/,/g, ''));

export function splitRow(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((cell) => cell.trim());
}

/** The data rows between the table markers (header and separator skipped). */
export function parseValidationTable(markdown: string): ValidationRow[] {
  const start = markdown.indexOf(TABLE_START);
  const end = markdown.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new TesseraError('TESSERA_ERR_BAD_CONFIG', 'the validation table markers are missing');
  const lines = markdown.slice(start + TABLE_START.length, end).split('\n').filter((line) => line.trim().startsWith('|'));
  return lines.slice(2).map((line) => {
    const cells = splitRow(line);
    const [id, model, hardware, layout, weights, kv, input, output, load, options, metric, measured, , , source] = cells;
    if (cells.length !== COLUMNS.length) bad(id, `has ${cells.length} cells, not ${COLUMNS.length}`);
    const found = METRICS.find((name) => name === metric);
    if (!found) bad(id, `unknown metric "${metric}"`);
    return { id, model, hardware, layout, weights, kv, input: number(input), output: number(output), load, options, metric: found, measured: number(measured), source, cells };
  });
}

function parseLayout(id: string, text: string): Layout {
  const layout = { tp: 1, pp: 1, ep: 1, dp: 1 };
  for (const part of text.split(/\s+/)) {
    const match = /^(tp|pp|ep|dp)(\d+)$/.exec(part);
    if (!match) bad(id, `layout "${text}"`);
    layout[match[1] as keyof Layout] = Number(match[2]);
  }
  return layout;
}

function parseLoad(id: string, text: string): { arrival: Arrival; burst: boolean } {
  const [kind, value] = text.split(/\s+/);
  if (kind === 'max') return { arrival: { kind: 'max' }, burst: false };
  if (kind === 'qps') return { arrival: { kind: 'poisson', qps: number(value) }, burst: false };
  if (kind === 'c' || kind === 'burst') return { arrival: { kind: 'closed', concurrency: number(value) }, burst: kind === 'burst' };
  return bad(id, `load "${text}"`);
}

/** `seqs=N` (max sequences), `chunk=N` (prefill tokens per step): the measured runtime's settings. */
function applyOptions(id: string, hardware: HardwareSpec, text: string): HardwareSpec {
  let runtime = hardware.runtime;
  for (const part of text.split(/\s+/).filter((piece) => piece && piece !== '-')) {
    const [key, value] = part.split('=');
    if (key === 'seqs') runtime = { ...runtime, maxNumSeqs: number(value) };
    else if (key === 'chunk') runtime = { ...runtime, maxBatchTokens: number(value) };
    else bad(id, `option "${part}"`);
  }
  return { ...hardware, runtime };
}

export function rowInput(row: ValidationRow): PlanInput {
  const { arrival, burst } = parseLoad(row.id, row.load);
  return {
    shape: catalogModel(row.model),
    hardware: applyOptions(row.id, catalogHardware(row.hardware), row.options),
    layout: parseLayout(row.id, row.layout),
    weights: parseWeightDtype(row.weights),
    kv: parseKvDtype(row.kv),
    workload: { inputLength: row.input, outputLength: row.output, arrival, burst },
    frontend: 'none',
  };
}

export function predictRow(row: ValidationRow): number {
  const input = rowInput(row);
  const result = planDeployment(input);
  const clients = input.workload.arrival.kind === 'closed' ? input.workload.arrival.concurrency : 1;
  switch (row.metric) {
    case 'output tok/s':
      return result.outputTokensPerSecond;
    case 'output tok/s/gpu':
      return result.outputTokensPerSecond / result.devices;
    case 'ttft ms':
      return result.ttftMs ?? Infinity;
    case 'tpot ms':
      return result.tpotMs;
    case 'latency ms':
      return (clients * row.output * 1000) / result.outputTokensPerSecond;
    case 'decode tok/s':
      return 1000 / result.tpotMs;
    case 'prefill tok/s':
      return result.prefillTokensPerSecond;
  }
}

/** Signed relative error of the prediction. */
export function relativeError(predicted: number, measured: number): number {
  return (predicted - measured) / measured;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Three significant figures, as the table shows predictions. */
export function formatPrediction(value: number): string {
  if (!Number.isFinite(value)) return 'unbounded';
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value) || 1)));
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatError(error: number): string {
  return `${error >= 0 ? '+' : ''}${(error * 100).toFixed(1)}%`;
}
