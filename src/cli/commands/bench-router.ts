/** `tessera bench router`: prefix routing vs round-robin, router overhead on one stream, failover (router-benchmark.ts). */
import type { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { describeMachine } from '../../bench/machine.js';
import { openModelFiles } from '../../engine/model-files.js';
import { failoverRun, sharedPrefixRun, singleStreamRun, type FailoverResult, type RouterBenchContext, type SharedPrefixResult, type SingleStreamResult } from '../../router/router-benchmark.js';
import { resolveModelSource } from '../../serve/model-source.js';
import { numberOption } from '../model-options.js';

interface BenchRouterOptions {
  model: string;
  backend: string;
  threads: number;
  prompts: number;
  users: number;
  systemLen: number;
  concurrency: number;
  cachedPrompts: number;
  streamTokens: number;
  rounds: number;
  failoverStreams: number;
  failoverTokens: number;
  stopMs: number;
  out: string;
  only: string;
}

export function registerBenchRouterCommand(bench: Command): void {
  bench
    .command('router')
    .description('router benchmark on real replica processes: (a) prefix routing vs round-robin on shared system prompts, (b) one stream through the router vs direct, (c) failover (SIGKILL, SIGSTOP)')
    .option('--model <path>', 'model the replicas serve (a file, or synth:PRESET)', 'synth:small')
    .option('--backend <name>', 'replicas\' compute backend', 'auto')
    .option('--threads <n>', 'compute threads per replica', numberOption('--threads', 1, 1024, true), 1)
    .option('--prompts <n>', '(a) distinct system prompts', numberOption('--prompts', 1, 1000, true), 8)
    .option('--users <n>', '(a) requests per system prompt', numberOption('--users', 1, 10_000, true), 12)
    .option('--system-len <n>', '(a) tokens of each system prompt', numberOption('--system-len', 16, 100_000, true), 512)
    .option('--concurrency <n>', '(a) clients at once', numberOption('--concurrency', 1, 1000, true), 8)
    .option('--cached-prompts <n>', '(a) system prompts one replica\'s KV cache holds (fewer than --prompts: together the two replicas hold them all)', numberOption('--cached-prompts', 1, 1000, true), 5)
    .option('--only <parts>', 'run only these parts, e.g. a,c', 'a,b,c')
    .option('--stream-tokens <n>', '(b) tokens of the single stream', numberOption('--stream-tokens', 8, 100_000, true), 256)
    .option('--rounds <n>', '(b) rounds of (direct, routed) pairs; the median of the pairs\' ratios counts', numberOption('--rounds', 1, 100, true), 5)
    .option('--failover-streams <n>', '(c) concurrent streams', numberOption('--failover-streams', 1, 1000, true), 8)
    .option('--failover-tokens <n>', '(c) tokens per stream', numberOption('--failover-tokens', 8, 100_000, true), 256)
    .option('--stop-ms <ms>', '(c) how long the hung replica stays stopped (longer than the router\'s 2 s health timeout)', numberOption('--stop-ms', 100, 600_000, true), 4000)
    .option('--out <dir>', 'folder for the JSON result', 'bench/results')
    .action(async (options: BenchRouterOptions) => {
      const log = (line: string): void => void process.stderr.write(`${line}\n`);
      const loadBefore = loadavg();
      const source = await resolveModelSource(options.model, log);
      try {
        const files = openModelFiles(source.path);
        files.store.close();
        const ctx: RouterBenchContext = { model: source.path, name: 'bench', config: files.config, backend: options.backend, threadsPerReplica: options.threads, log };
        const parts = new Set(options.only.split(',').map((part) => part.trim()));
        const report = {
          benchmark: 'router',
          date: new Date().toISOString(),
          model: options.model,
          options,
          machine: { ...describeMachine(), loadAverageBefore: loadBefore },
          sharedPrefix: parts.has('a') ? await sharedPrefixPart(ctx, options) : undefined,
          singleStream: parts.has('b') ? await singleStreamPart(ctx, options) : undefined,
          failover: parts.has('c') ? await failoverPart(ctx, options) : undefined,
          loadAverageAfter: loadavg(),
        };
        const floors = floorsOf(report);
        mkdirSync(options.out, { recursive: true });
        const file = join(options.out, `router-${report.date.slice(0, 19).replace(/:/g, '-')}.json`);
        writeFileSync(file, `${JSON.stringify({ ...report, floors }, null, 2)}\n`);
        log(`wrote ${file}`);
        process.stdout.write(`${JSON.stringify({ ...report, floors })}\n`);
      } finally {
        source.cleanup();
      }
    });
}


async function sharedPrefixPart(ctx: RouterBenchContext, options: BenchRouterOptions): Promise<{ roundRobin: SharedPrefixResult; prefix: SharedPrefixResult; prefillReduction: number; ttftRatio: number }> {
  const shared = { prompts: options.prompts, usersPerPrompt: options.users, systemLen: options.systemLen, userLen: 32, outputLen: 8, concurrency: options.concurrency, cachedPrompts: options.cachedPrompts };
  const results: SharedPrefixResult[] = [];
  for (const policy of ['round-robin', 'prefix'] as const) {
    ctx.log(`(a) shared prefixes: ${policy}`);
    const result = await sharedPrefixRun(ctx, policy, shared);
    ctx.log(`    ${result.prefillTokens} of ${result.promptTokens} prompt tokens computed, mean TTFT ${result.meanTtftMs.toFixed(1)} ms (p50 ${result.p50TtftMs.toFixed(1)} ms), ${result.wallSeconds.toFixed(1)} s`);
    results.push(result);
  }
  const [roundRobin, prefix] = results;
  return { roundRobin, prefix, prefillReduction: 1 - prefix.prefillTokens / roundRobin.prefillTokens, ttftRatio: prefix.meanTtftMs / roundRobin.meanTtftMs };
}

async function singleStreamPart(ctx: RouterBenchContext, options: BenchRouterOptions): Promise<SingleStreamResult> {
  ctx.log('(b) one stream, direct vs routed');
  const single = await singleStreamRun(ctx, options.streamTokens, options.rounds);
  const rates = (values: number[]): string => values.map((value) => value.toFixed(1)).join(', ');
  ctx.log(`    direct ${rates(single.directTokensPerSecond)} tok/s; routed ${rates(single.routedTokensPerSecond)} tok/s; median of routed / direct per round ${single.ratio.toFixed(3)} (best / best ${single.bestRatio.toFixed(3)}); the router's CPU per token ${single.routerCpuMicrosPerToken.toFixed(0)} µs`);
  return single;
}

async function failoverPart(ctx: RouterBenchContext, options: BenchRouterOptions): Promise<FailoverResult[]> {
  const results: FailoverResult[] = [];
  for (const fault of ['SIGKILL', 'SIGSTOP'] as const) {
    ctx.log(`(c) failover: ${fault}`);
    const result = await failoverRun(ctx, fault, options.failoverStreams, options.failoverTokens, options.stopMs);
    ctx.log(`    detected in ${result.detectMs?.toFixed(0) ?? '?'} ms, largest gap after the fault ${result.largestGapAfterFaultMs.toFixed(0)} ms (fault-free ${result.largestGapFaultFreeMs.toFixed(0)} ms), ${result.tokensLost} tokens lost, ${result.streamsIdentical}/${result.streams} streams identical, migrations ${JSON.stringify(result.migrations)}`);
    results.push(result);
  }
  return results;
}

/** The floors, for the parts that ran. */
function floorsOf(report: { sharedPrefix?: { prefillReduction: number; ttftRatio: number }; singleStream?: SingleStreamResult; failover?: FailoverResult[] }): Record<string, boolean> {
  const floors: Record<string, boolean> = {};
  if (report.sharedPrefix) {
    floors.prefillAtLeast40PercentFewer = report.sharedPrefix.prefillReduction >= 0.4;
    floors.lowerMeanTtft = report.sharedPrefix.ttftRatio < 1;
  }
  if (report.singleStream) floors.singleStreamAtLeast095 = report.singleStream.ratio >= 0.95;
  if (report.failover) floors.noTokensLost = report.failover.every((run) => run.tokensLost === 0 && run.streamsIdentical === run.streams);
  return floors;
}
