// Recomputes the predicted and error columns of docs/planner-validation.md
// from the planner (npm run build first). Prints the table; --write saves it.
import { readFileSync, writeFileSync } from 'node:fs';
import { formatError, formatPrediction, median, parseValidationTable, predictRow, relativeError, splitRow, TABLE_END, TABLE_START } from '../dist/planner/validation-table.js';

const path = new URL('../docs/planner-validation.md', import.meta.url);
const markdown = readFileSync(path, 'utf8');
const rows = parseValidationTable(markdown);
const errors = [];
const replaced = new Map();
for (const row of rows) {
  const predicted = predictRow(row);
  const error = relativeError(predicted, row.measured);
  errors.push({ row, error });
  const cells = [...row.cells];
  cells[12] = formatPrediction(predicted);
  cells[13] = formatError(error);
  replaced.set(row.id, `| ${cells.join(' | ')} |`);
}
const abs = errors.map((e) => Math.abs(e.error));
const summary = `Median absolute error: ${(median(abs) * 100).toFixed(1)}% over ${rows.length} rows; ${(median(errors.filter((e) => !e.row.id.includes('cal')).map((e) => Math.abs(e.error))) * 100).toFixed(1)}% over the ${errors.filter((e) => !e.row.id.includes('cal')).length} rows not used for calibration.`;
const start = markdown.indexOf(TABLE_START);
const end = markdown.indexOf(TABLE_END);
const table = markdown
  .slice(start, end)
  .split('\n')
  .map((line) => (line.trim().startsWith('|') && replaced.has(splitRow(line)[0]) ? replaced.get(splitRow(line)[0]) : line))
  .join('\n');
let out = markdown.slice(0, start) + table + markdown.slice(end);
out = out.replace(/<!-- validation-summary:start -->[\s\S]*<!-- validation-summary:end -->/, `<!-- validation-summary:start -->\n${summary}\n<!-- validation-summary:end -->`);
for (const { row, error } of errors) console.log(`${row.id.padEnd(7)} ${row.model.padEnd(16)} ${row.hardware.padEnd(13)} ${row.metric.padEnd(17)} ${String(row.measured).padStart(9)} ${formatPrediction(predictRow(row)).padStart(10)} ${formatError(error).padStart(8)}`);
console.log(summary);
if (process.argv.includes('--write')) writeFileSync(path, out);
