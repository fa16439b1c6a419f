// Refreshes the generated parts of the planner's documents from the code
// (npm run build first): the predicted and error columns of
// docs/planner-validation.md, and in docs/planner.md the self-consistency
// table (Tessera's own runs) and the hardware catalog's constants.
// Prints what it computed; --write saves the documents.
import { readFileSync, writeFileSync } from 'node:fs';
import { formatError, formatPrediction, median, parseValidationTable, predictRow, relativeError, splitRow, TABLE_END, TABLE_START } from '../dist/planner/validation-table.js';
import { DEV_RUNS, measuredMean } from '../dist/planner/dev-machine-runs.js';
import { HARDWARE } from '../dist/planner/hardware-catalog.js';

const write = process.argv.includes('--write');
const read = (name) => readFileSync(new URL(`../docs/${name}`, import.meta.url), 'utf8');
const save = (name, text) => write && writeFileSync(new URL(`../docs/${name}`, import.meta.url), text);
const between = (text, marker, body) => text.replace(new RegExp(`<!-- ${marker}:start -->[\\s\\S]*<!-- ${marker}:end -->`), `<!-- ${marker}:start -->\n${body}\n<!-- ${marker}:end -->`);

function validation() {
  const markdown = read('planner-validation.md');
  const rows = parseValidationTable(markdown);
  const replaced = new Map();
  const errors = rows.map((row) => {
    const predicted = predictRow(row);
    const error = relativeError(predicted, row.measured);
    const cells = [...row.cells];
    cells[12] = formatPrediction(predicted);
    cells[13] = formatError(error);
    replaced.set(row.id, `| ${cells.join(' | ')} |`);
    console.log(`${row.id.padEnd(7)} ${row.model.padEnd(16)} ${row.hardware.padEnd(13)} ${row.metric.padEnd(17)} ${String(row.measured).padStart(9)} ${cells[12].padStart(10)} ${cells[13].padStart(8)}`);
    return { row, error };
  });
  const outOfSample = errors.filter((e) => !e.row.id.includes('cal'));
  const summary = `Median absolute error: ${(median(errors.map((e) => Math.abs(e.error))) * 100).toFixed(1)}% over ${rows.length} rows; ${(median(outOfSample.map((e) => Math.abs(e.error))) * 100).toFixed(1)}% over the ${outOfSample.length} rows not used for calibration.`;
  console.log(summary);
  const start = markdown.indexOf(TABLE_START);
  const end = markdown.indexOf(TABLE_END);
  const table = markdown.slice(start, end).split('\n').map((line) => (line.trim().startsWith('|') && replaced.has(splitRow(line)[0]) ? replaced.get(splitRow(line)[0]) : line)).join('\n');
  save('planner-validation.md', between(markdown.slice(0, start) + table + markdown.slice(end), 'validation-summary', summary));
}

function selfConsistency() {
  const lines = ['| run | files | measured tok/s | predicted tok/s | error |', '|---|---|---|---|---|'];
  for (const run of DEV_RUNS) {
    const files = run.files.map((file) => JSON.parse(readFileSync(new URL(`../bench/results/${file}`, import.meta.url), 'utf8')));
    const measured = measuredMean(run, files);
    const predicted = run.predict(files);
    const name = run.reportOnly ? `${run.name} (reported, not held to 15%)` : run.name;
    lines.push(`| ${name} | ${run.files.map((f) => `\`${f}\``).join(', ')} | ${measured.toFixed(1)} | ${predicted.toFixed(1)} | ${formatError(relativeError(predicted, measured))} |`);
  }
  console.log(lines.join('\n'));
  return lines.join('\n');
}

function hardwareTable() {
  const lines = ['| device | memory GiB | bandwidth GB/s | dense TFLOPS (f16 / fp8 / fp4 / int8) | interconnect (busbw GB/s, α µs) | efficiency (memory, compute, overlap) | step overhead ms |', '|---|---|---|---|---|---|---|'];
  const round = (value) => (value === undefined ? '–' : Number(value.toPrecision(3)).toString());
  for (const h of HARDWARE) {
    const c = h.compute;
    lines.push(`| ${h.name} | ${round(h.memoryGiB)} | ${round(h.memoryBandwidthGBs)} | ${[c.f16, c.fp8, c.fp4, c.int8].map(round).join(' / ')} | ${h.interconnect.name} (${round(h.interconnect.busBandwidthGBs)}, ${round(h.interconnect.latencyUs)}) | ${round(h.efficiency.memory)}, ${round(h.efficiency.compute)}, ${h.efficiency.overlap} | ${round(h.runtime.stepOverheadMs)} |`);
  }
  const sources = HARDWARE.map((h) => `- **${h.name}**: ${Object.entries(h.sources).map(([key, value]) => `${key}: ${value}`).join('; ')}.`);
  return `${lines.join('\n')}\n\n${sources.join('\n')}`;
}

validation();
let planner = read('planner.md');
planner = between(planner, 'self-consistency', selfConsistency());
planner = between(planner, 'hardware-table', hardwareTable());
save('planner.md', planner);
