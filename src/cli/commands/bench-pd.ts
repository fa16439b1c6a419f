/** `tessera bench pd`: disaggregated prefill and decode vs one colocated replica on the same cores (pd-benchmark.ts). */
import { Option, type Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { describeMachine } from '../../bench/machine.js';
import { openModelFiles } from '../../engine/model-files.js';
import { colocatedRun, disaggregatedRun, type ColocatedResult, type DisaggregatedResult, type PdBenchContext } from '../../router/pd-benchmark.js';
import type { PdWorkload } from '../../router/pd-workload.js';
import { resolveModelSource } from '../../serve/model-source.js';
import { numberOption } from '../model-options.js';

interface BenchPdOptions extends PdWorkload {
  model: string;
  backend: string;
  threads: number;
  maxBatchTokens: number;
  prefillMaxBatchTokens?: number;
  kvCacheMib: number;
  probeFrames: number;
  prefillNice?: number;
  kvDirect?: 'on' | 'off';
  pdLocalPrefill?: number;
  out: string;
}

export function registerBenchPdCommand(bench: Command): void {
  bench
    .command('pd')
    .description('disaggregated prefill and decode (a prefill and a decode replica with half the threads each, behind router --pd) vs one colocated replica with all of them (chunked prefill): TTFT and TPOT while long prompts arrive among decoding streams, and the KV transfer rate vs the link\'s probed bandwidth')
    .option('--model <path>', 'model of the replicas (a file, or synth:PRESET[:DTYPE])', 'synth:tinyllama-1.1b:q8_0')
    .option('--backend <name>', 'replicas\' compute backend', 'auto')
    .option('--threads <n>', 'compute threads of each deployment: the colocated replica\'s; prefill and decode replicas get half each', numberOption('--threads', 2, 1024, true), 2)
    .option('--streams <n>', 'clients decoding back to back', numberOption('--streams', 1, 1000, true), 16)
    .option('--stream-prompt-len <n>', 'prompt tokens of a stream request', numberOption('--stream-prompt-len', 1, 100_000, true), 32)
    .option('--stream-output-len <n>', 'tokens of a stream request', numberOption('--stream-output-len', 2, 100_000, true), 64)
    .option('--long-prompts <n>', 'long prompts arriving among the streams', numberOption('--long-prompts', 1, 1000, true), 4)
    .option('--long-prompt-len <n>', 'tokens of a long prompt', numberOption('--long-prompt-len', 16, 1_000_000, true), 1024)
    .option('--long-output-len <n>', 'tokens generated for a long prompt', numberOption('--long-output-len', 1, 100_000, true), 16)
    .option('--interval-ms <ms>', 'between two long prompts\' arrivals', numberOption('--interval-ms', 0, 3_600_000, true), 8000)
    .option('--max-batch-tokens <n>', 'every replica\'s tokens per step (the colocated replica\'s prefill chunk)', numberOption('--max-batch-tokens', 16, 1_000_000, true), 512)
    .option('--prefill-max-batch-tokens <n>', 'the prefill replica\'s --max-batch-tokens, its prefill chunk (default: --max-batch-tokens)', numberOption('--prefill-max-batch-tokens', 16, 1_000_000, true))
    .option('--kv-cache-mib <n>', 'every replica\'s KV cache', numberOption('--kv-cache-mib', 1, 1e7), 512)
    .option('--probe-frames <n>', 'frames of the link bandwidth probe', numberOption('--probe-frames', 1, 4096, true), 64)
    .addOption(new Option('--kv-direct <on|off>', 'the decode replica\'s --kv-direct: off sends every row through the shared-memory ring (default: serve\'s, on)').choices(['on', 'off']))
    .option('--prefill-nice <n>', 'the prefill replica\'s --engine-nice (default: serve\'s, 0)', numberOption('--prefill-nice', 0, 19, true))
    .option('--pd-local-prefill <tokens>', "the router's --pd-local-prefill: sequences with at most this many tokens to prefill run whole on the decode replica (the issue's floors want every sequence disaggregated: 0)", numberOption('--pd-local-prefill', 0, 2 ** 31, true))
    .option('--out <dir>', 'folder for the JSON result', 'bench/results')
    .action(async (options: BenchPdOptions) => {
      const log = (line: string): void => void process.stderr.write(`${line}\n`);
      const loadBefore = loadavg();
      const source = await resolveModelSource(options.model, log);
      try {
        const files = openModelFiles(source.path);
        files.store.close();
        const ctx: PdBenchContext = { model: source.path, name: 'bench', config: files.config, backend: options.backend, threads: options.threads, maxBatchTokens: options.maxBatchTokens, prefillMaxBatchTokens: options.prefillMaxBatchTokens, kvCacheMib: options.kvCacheMib, probeFrames: options.probeFrames, prefillNice: options.prefillNice, kvDirect: options.kvDirect, pdLocalPrefill: options.pdLocalPrefill, log };
        const workload = workloadOf(options);
        log(`colocated: one replica, ${options.threads} threads`);
        const colocated = await colocatedRun(ctx, workload);
        logRun(log, colocated);
        log(`disaggregated: prefill + decode replica behind router --pd`);
        const disaggregated = await disaggregatedRun(ctx, workload);
        logRun(log, disaggregated);
        log(`    KV: ${disaggregated.kv.transfers} transfers, ${(disaggregated.kv.bytes / 2 ** 20).toFixed(1)} MiB at ${disaggregated.kv.rateMBps.toFixed(0)} MB/s on the wire; the ${disaggregated.kv.probe.kind} link probed ${disaggregated.kv.probeBefore.rateMBps.toFixed(0)} MB/s before, ${disaggregated.kv.probeAfter.rateMBps.toFixed(0)} / ${disaggregated.kv.probe.rateMBps.toFixed(0)} MB/s after (${(100 * disaggregated.kv.rateOverProbe).toFixed(0)}% of the best)`);
        const { write, read, direct } = disaggregated.kv.frameCopies;
        log(`    frame copies over 1 ms: ${direct.slow} of ${direct.frames} direct writes into the decode blocks (${(direct.seconds * 1000).toFixed(1)} ms in all), ${write.slow} of ${write.frames} writes into the ring (${(write.seconds * 1000).toFixed(1)} ms), ${read.slow} of ${read.frames} reads (${(read.seconds * 1000).toFixed(1)} ms)`);
        const report = { benchmark: 'pd', date: new Date().toISOString(), model: options.model, options, machine: { ...describeMachine(), loadAverageBefore: loadBefore }, colocated, disaggregated, loadAverageAfter: loadavg() };
        const result = { ...report, ratios: ratiosOf(colocated, disaggregated), floors: floorsOf(colocated, disaggregated) };
        mkdirSync(options.out, { recursive: true });
        const file = join(options.out, `pd-${report.date.slice(0, 19).replace(/:/g, '-')}.json`);
        writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
        log(`ratios ${JSON.stringify(result.ratios)}; floors ${JSON.stringify(result.floors)}; wrote ${file}`);
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } finally {
        source.cleanup();
      }
    });
}

function workloadOf(options: BenchPdOptions): PdWorkload {
  const { streams, streamPromptLen, streamOutputLen, longPrompts, longPromptLen, longOutputLen, intervalMs } = options;
  return { streams, streamPromptLen, streamOutputLen, longPrompts, longPromptLen, longOutputLen, intervalMs };
}

function logRun(log: (line: string) => void, run: ColocatedResult | DisaggregatedResult): void {
  const { streams, longPrompts } = run;
  log(`    streams: ${streams.requests} requests, TPOT p50 ${streams.tpotMs.p50.toFixed(0)} p99 ${streams.tpotMs.p99.toFixed(0)} ms, between tokens p50 ${streams.itlMs.p50.toFixed(0)} p99 ${streams.itlMs.p99.toFixed(0)} max ${streams.itlMs.max.toFixed(0)} ms, TTFT p50 ${streams.ttftMs.p50.toFixed(0)} p99 ${streams.ttftMs.p99.toFixed(0)} ms`);
  log(`    long prompts: TTFT p50 ${longPrompts.ttftMs.p50.toFixed(0)} p99 ${longPrompts.ttftMs.p99.toFixed(0)} ms; ${run.outputTokensPerSecond.toFixed(1)} output tok/s over ${run.wallSeconds.toFixed(1)} s`);
}

/** Disaggregated over colocated, for each figure (below 1: disaggregated is faster). */
function ratiosOf(colocated: ColocatedResult, disaggregated: DisaggregatedResult): Record<string, number> {
  return {
    streamTpotP50: disaggregated.streams.tpotMs.p50 / colocated.streams.tpotMs.p50,
    streamTpotP99: disaggregated.streams.tpotMs.p99 / colocated.streams.tpotMs.p99,
    streamItlP99: disaggregated.streams.itlMs.p99 / colocated.streams.itlMs.p99,
    streamTtftP99: disaggregated.streams.ttftMs.p99 / colocated.streams.ttftMs.p99,
    longTtftP50: disaggregated.longPrompts.ttftMs.p50 / colocated.longPrompts.ttftMs.p50,
    outputTokensPerSecond: disaggregated.outputTokensPerSecond / colocated.outputTokensPerSecond,
  };
}

/** The floors: decode TPOT p99 (per request, and between tokens) ≤ 0.6× colocated; KV moving at ≥ 70% of the link's probed bandwidth. */
function floorsOf(colocated: ColocatedResult, disaggregated: DisaggregatedResult): Record<string, boolean> {
  return {
    decodeTpotP99AtMost06: disaggregated.streams.tpotMs.p99 <= 0.6 * colocated.streams.tpotMs.p99,
    decodeItlP99AtMost06: disaggregated.streams.itlMs.p99 <= 0.6 * colocated.streams.itlMs.p99,
    transferAtLeast70PercentOfLink: disaggregated.kv.rateOverProbe >= 0.7,
    allDisaggregated: disaggregated.sequences.colocated === 0,
  };
}
