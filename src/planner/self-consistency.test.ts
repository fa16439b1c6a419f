/**
 * Issue #14's self-consistency check: `tessera plan` on this machine's
 * profile predicts Tessera's own committed runs (engine decode and prefill of
 * TinyLlama-1.1B Q8_0 and Q4_0, serving at 1 and 16 streams, tp 2, pp 2)
 * within 15%, and the profile's inputs are the numbers in those JSON files.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DEV_MEASUREMENTS } from './dev-machine.js';
import { DEV_RUNS, measuredMean, type BenchJson } from './dev-machine-runs.js';

const results = new URL('../../bench/results/', import.meta.url);
const read = (file: string): BenchJson => JSON.parse(readFileSync(new URL(file, results), 'utf8')) as BenchJson;
const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
const close = (actual: number, expected: number, what: string): void => assert.ok(Math.abs(actual - expected) <= 0.005 * Math.abs(expected) + 0.01, `${what}: ${actual} vs ${expected} in the JSON`);

test("the dev machine's profile takes its inputs from the committed bench JSON", () => {
  const q8 = read('engine-2026-11-26T05-44-46-665Z.json');
  const q4 = read('engine-2026-11-26T05-32-25-061Z.json');
  const [q8Decode, q4Decode] = DEV_MEASUREMENTS.decodes;
  close(q8Decode.tokensPerSecond, (q8['tessera'] as { decode: number }).decode, 'q8_0 decode');
  close(q8Decode.triadGBs, q8['memoryBandwidthGBs'] as number, 'q8_0 triad');
  close(q4Decode.tokensPerSecond, (q4['tessera'] as { decode: number }).decode, 'q4_0 decode');
  close(q4Decode.triadGBs, q4['memoryBandwidthGBs'] as number, 'q4_0 triad');
  const kernels = read('kernels-this-build-2026-11-26T05-51-09-135Z.json')['results'] as { dtype: string; batches: { gops: number }[] }[];
  const best = (dtypes: string[]): number => Math.max(...kernels.filter((k) => dtypes.includes(k.dtype)).flatMap((k) => k.batches.map((b) => b.gops)));
  close(DEV_MEASUREMENTS.kernelInt8Gops, best(['q8_0', 'q4_0']), 'int8 kernels');
  close(DEV_MEASUREMENTS.kernelF16Gops, best(['f16']), 'f16 kernels');
  const parallel = ['parallel-decode-2026-11-26T03-47-42-538Z.json', 'parallel-decode-2026-11-26T05-47-29-143Z.json'].map(read);
  const rowOf = (json: BenchJson, config: string): Record<string, unknown> => (json['rows'] as { config: string }[]).find((r) => r.config === config) as unknown as Record<string, unknown>;
  close(DEV_MEASUREMENTS.singleThreadDecode, mean(parallel.map((j) => rowOf(j, 'tp1 x 1 thread')['tokensPerSecond'] as number)), 'single thread');
  close(DEV_MEASUREMENTS.pipelineDecode, mean(parallel.map((j) => rowOf(j, 'pp2 x 1 thread')['tokensPerSecond'] as number)), 'pp 2');
  close(DEV_MEASUREMENTS.tensorParallelWaitMsPerToken, mean(parallel.map((j) => (rowOf(j, 'tp2 x 1 thread')['perTokenOnReportingRank'] as { waitMs: number }).waitMs)), 'tp 2 wait');
  const serve = ['serve-2026-11-26T05-48-53.json', 'serve-2026-11-26T05-49-14.json'].map(read);
  const tpot = (c: number): number => mean(serve.map((j) => ((j['results'] as { concurrency: number; tpotMs: { p50: number } }[]).find((l) => l.concurrency === c) as { tpotMs: { p50: number } }).tpotMs.p50));
  close(DEV_MEASUREMENTS.serveTpotMs.c1, tpot(1), 'serve c1 TPOT');
  close(DEV_MEASUREMENTS.serveTpotMs.c16, tpot(16), 'serve c16 TPOT');
});

for (const run of DEV_RUNS.filter((r) => !r.reportOnly)) {
  test(`plan predicts ${run.name} within 15% of the committed runs`, () => {
    const files = run.files.map(read);
    const measured = measuredMean(run, files);
    const predicted = run.predict(files);
    const error = (predicted - measured) / measured;
    assert.ok(Math.abs(error) <= 0.15, `${run.name}: predicted ${predicted.toFixed(1)} tok/s, measured ${measured.toFixed(1)} (${(error * 100).toFixed(1)}%)`);
  });
}

test('docs/planner.md shows the current self-consistency figures', () => {
  const doc = readFileSync(new URL('../../docs/planner.md', import.meta.url), 'utf8');
  for (const run of DEV_RUNS) {
    const files = run.files.map(read);
    const cells = `| ${measuredMean(run, files).toFixed(1)} | ${run.predict(files).toFixed(1)} |`;
    assert.ok(doc.includes(cells), `${run.name}: ${cells} (run node scripts/planner-docs.mjs --write)`);
  }
});
