/**
 * The public validation table recomputed: every prediction in
 * docs/planner-validation.md must be what the planner computes now from the
 * row's inputs, and the median absolute error must stay within 20%.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { formatError, formatPrediction, median, parseValidationTable, predictRow, relativeError } from './validation-table.js';

const markdown = readFileSync(new URL('../../docs/planner-validation.md', import.meta.url), 'utf8');
const rows = parseValidationTable(markdown);

test('the validation table has at least 20 published measurements across models, hardware and TP degrees', () => {
  assert.ok(rows.length >= 20, `${rows.length} rows`);
  assert.ok(new Set(rows.map((row) => row.model)).size >= 5);
  assert.ok(new Set(rows.map((row) => row.hardware)).size >= 4);
  assert.ok(new Set(rows.map((row) => row.layout)).size >= 4);
  for (const row of rows) assert.match(row.source, /^R\d+$/, `row ${row.id} names its source`);
  for (const source of new Set(rows.map((row) => row.source))) assert.ok(markdown.includes(`**${source}**`), `${source} is listed under Sources`);
});

test('every prediction in the table is what the planner computes from the row', () => {
  for (const row of rows) {
    const predicted = predictRow(row);
    assert.equal(row.cells[12], formatPrediction(predicted), `row ${row.id} predicted`);
    assert.equal(row.cells[13], formatError(relativeError(predicted, row.measured)), `row ${row.id} error`);
  }
});

test('the median absolute error over the published measurements is at most 20%', () => {
  const errors = rows.map((row) => Math.abs(relativeError(predictRow(row), row.measured)));
  const value = median(errors);
  assert.ok(value <= 0.2, `median ${(value * 100).toFixed(1)}%`);
  assert.ok(markdown.includes(`Median absolute error: ${(value * 100).toFixed(1)}% over ${rows.length} rows`), 'the summary line is current');
});
