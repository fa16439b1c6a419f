/**
 * `tessera bench router`: the router measured on real replica processes.
 * (a) shared prefixes — 8 long system prompts × many users over 2
 *     replicas whose KV caches hold only part of them: prefill tokens
 *     computed and TTFT, prefix routing against round-robin;
 * (b) one stream through the router against straight to the replica;
 * (c) failover — a replica SIGKILLed (crash) or SIGSTOPped (hang) under
 *     streaming load: time to detect, the largest gap a client saw, and
 *     tokens lost against a fault-free run (must be 0).
 */
import { blockBytes } from '../engine/block-manager.js';
import type { ModelConfig } from '../core/model-config.js';
import { REPLICA_LOAD_PATH, type ReplicaLoad } from '../serve/replica-protocol.js';
import { mean, randomIds, shuffled, streamCompletion, type StreamedRun } from './bench-client.js';
import { launchRouter, type Router } from './launch-router.js';
import { LocalReplicas } from './local-replicas.js';
import type { RoutingPolicy } from './routing-policy.js';

export interface RouterBenchContext {
  model: string;
  name: string;
  config: ModelConfig;
  backend: string;
  threadsPerReplica: number;
  log: (line: string) => void;
}

interface Cluster {
  replicas: LocalReplicas;
  urls: string[];
  router: Router;
  key: string;
  /** Router log lines with their arrival time. */
  events: { at: number; line: string }[];
}

const KEY = 'bench-replica-key';
const BLOCK = 16;

async function startCluster(ctx: RouterBenchContext, count: number, policy: RoutingPolicy, serveArgs: string[] = []): Promise<Cluster> {
  const args = ['--model', ctx.model, '--served-model-name', ctx.name, '--api-key', KEY, '--backend', ctx.backend, '--threads', String(ctx.threadsPerReplica), ...serveArgs];
  const { replicas, urls } = await LocalReplicas.start(count, args, () => undefined);
  const events: Cluster['events'] = [];
  const log = (line: string): void => void events.push({ at: performance.now(), line });
  const router = await launchRouter({ model: ctx.model, replicas: urls, replicaApiKey: KEY, port: 0, policy, log }).catch(async (error: unknown) => {
    await replicas.stop();
    throw error;
  });
  return { replicas, urls, router, key: KEY, events };
}

async function stopCluster(cluster: Cluster): Promise<void> {
  await cluster.router.server.close();
  await cluster.replicas.stop();
}

async function replicaLoad(url: string): Promise<ReplicaLoad> {
  return (await (await fetch(`${url}${REPLICA_LOAD_PATH}`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as ReplicaLoad;
}

export interface SharedPrefixOptions {
  prompts: number;
  usersPerPrompt: number;
  systemLen: number;
  userLen: number;
  outputLen: number;
  concurrency: number;
  /** System prompts a replica's KV cache holds (besides its running sequences' own tails): fewer than `prompts`, so not every replica can keep every prompt. */
  cachedPrompts: number;
}

export interface SharedPrefixResult {
  policy: RoutingPolicy;
  requests: number;
  promptTokens: number;
  /** Prompt tokens the replicas computed (not found in their prefix caches). */
  prefillTokens: number;
  meanTtftMs: number;
  p50TtftMs: number;
  wallSeconds: number;
  kvCacheMib: number;
}

/** (a) One policy on fresh replicas. */
export async function sharedPrefixRun(ctx: RouterBenchContext, policy: RoutingPolicy, options: SharedPrefixOptions): Promise<SharedPrefixResult> {
  const vocab = ctx.config.vocabSize;
  const systems = Array.from({ length: options.prompts }, (_, p) => randomIds(options.systemLen, vocab, 100 + p));
  // A running sequence shares its system prompt's blocks with the cache; its own are the tail's (and one the prompt's end may straddle).
  const tailBlocks = Math.ceil((options.userLen + options.outputLen) / BLOCK) + 1;
  const numBlocks = options.cachedPrompts * Math.ceil(options.systemLen / BLOCK) + options.concurrency * tailBlocks;
  const kvCacheMib = (numBlocks * blockBytes(ctx.config, BLOCK)) / 2 ** 20;
  const cluster = await startCluster(ctx, 2, policy, ['--kv-cache-mib', kvCacheMib.toFixed(4)]);
  try {
    // Shuffled, so round-robin does not send each system prompt to one replica by accident.
    const work = shuffled(
      systems.flatMap((_, p) => Array.from({ length: options.usersPerPrompt }, (_, u) => ({ p, u }))),
      7,
    );
    const ttfts: number[] = [];
    let next = 0;
    const started = performance.now();
    const worker = async (): Promise<void> => {
      for (let index = next++; index < work.length; index = next++) {
        const { p, u } = work[index];
        const prompt = [...systems[p], ...randomIds(options.userLen, vocab, 10_000 + p * 1000 + u)];
        const run = await streamCompletion({ url: cluster.router.server.url, body: { model: ctx.name, prompt, max_tokens: options.outputLen, temperature: 0, ignore_eos: true } });
        ttfts.push(run.chunkAt[0] - run.sentAt);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    const wallSeconds = (performance.now() - started) / 1000;
    const loads = await Promise.all(cluster.urls.map(replicaLoad));
    const promptTokens = loads.reduce((sum, load) => sum + load.stats.prefixQueriedTokens, 0);
    const hits = loads.reduce((sum, load) => sum + load.stats.prefixHitTokens, 0);
    const sorted = [...ttfts].sort((a, b) => a - b);
    return { policy, requests: work.length, promptTokens, prefillTokens: promptTokens - hits, meanTtftMs: mean(ttfts), p50TtftMs: sorted[Math.floor(sorted.length / 2)], wallSeconds, kvCacheMib };
  } finally {
    await stopCluster(cluster);
  }
}

export interface SingleStreamResult {
  outputTokens: number;
  rounds: number;
  directTokensPerSecond: number[];
  routedTokensPerSecond: number[];
  /**
   * Median over rounds of routed / direct within one round (the two runs of a
   * round are adjacent, so they share the machine's state; one slow run on a
   * shared machine moves one pair, not the result).
   */
  ratio: number;
  /** Best routed round over best direct round (the previous statistic, kept for comparison). */
  bestRatio: number;
  /**
   * CPU time this process spent per token routed, minus per token direct (the
   * client runs here both times, so the difference is the router's work):
   * unlike tok/s on a shared machine, it does not move with the load.
   */
  routerCpuMicrosPerToken: number;
}

/** (b) The same replica, alternately straight and through a router (median of the rounds' ratios). */
export async function singleStreamRun(ctx: RouterBenchContext, outputLen: number, rounds: number): Promise<SingleStreamResult> {
  const cluster = await startCluster(ctx, 1, 'prefix');
  try {
    const body = { model: ctx.name, prompt: randomIds(16, ctx.config.vocabSize, 3), max_tokens: outputLen, temperature: 0, ignore_eos: true };
    const rate = (run: StreamedRun): number => run.chunkAt.length / ((run.endedAt - run.sentAt) / 1000);
    await streamCompletion({ url: cluster.urls[0], apiKey: KEY, body: { ...body, max_tokens: 8 } }); // warm-up
    const direct: number[] = [];
    const routed: number[] = [];
    // CPU microseconds and tokens of all rounds of each mode (the router polls in both, so the difference is its per-token work).
    const cpu = { direct: { micros: 0, tokens: 0 }, routed: { micros: 0, tokens: 0 } };
    const measured = async (url: string, apiKey: string | undefined, rates: number[], total: { micros: number; tokens: number }): Promise<void> => {
      const before = process.cpuUsage();
      const run = await streamCompletion({ url, apiKey, body });
      const used = process.cpuUsage(before);
      rates.push(rate(run));
      total.micros += used.user + used.system;
      total.tokens += run.chunkAt.length;
    };
    for (let round = 0; round < rounds; round++) {
      await measured(cluster.urls[0], KEY, direct, cpu.direct);
      await measured(cluster.router.server.url, undefined, routed, cpu.routed);
    }
    const routerCpuMicrosPerToken = cpu.routed.micros / cpu.routed.tokens - cpu.direct.micros / cpu.direct.tokens;
    const ratios = routed.map((value, round) => value / direct[round]).sort((a, b) => a - b);
    const middle = Math.floor(ratios.length / 2);
    const ratio = ratios.length % 2 === 1 ? ratios[middle] : (ratios[middle - 1] + ratios[middle]) / 2;
    return { outputTokens: outputLen, rounds, directTokensPerSecond: direct, routedTokensPerSecond: routed, ratio, bestRatio: Math.max(...routed) / Math.max(...direct), routerCpuMicrosPerToken };
  } finally {
    await stopCluster(cluster);
  }
}

export interface FailoverResult {
  fault: 'SIGKILL' | 'SIGSTOP';
  streams: number;
  outputLen: number;
  /** Signal to the router marking the replica down. */
  detectMs: number | null;
  /** Largest gap between two tokens of one stream from the fault on: the stall of the streams that moved. */
  largestGapAfterFaultMs: number;
  /** Largest gap between two tokens of any stream, fault-free run. */
  largestGapFaultFreeMs: number;
  tokensLost: number;
  streamsIdentical: number;
  migrations: Record<string, number>;
}

/** (c) Streams through a router over 2 replicas; one replica is signalled a third of the way through. */
export async function failoverRun(ctx: RouterBenchContext, fault: 'SIGKILL' | 'SIGSTOP', streams: number, outputLen: number, stopMs: number): Promise<FailoverResult> {
  const cluster = await startCluster(ctx, 2, 'prefix');
  let resume: NodeJS.Timeout | undefined;
  try {
    const bodies = Array.from({ length: streams }, (_, i) => ({ model: ctx.name, prompt: randomIds(24, ctx.config.vocabSize, 500 + i), max_tokens: outputLen, temperature: 0.8, seed: i, ignore_eos: true }));
    const url = cluster.router.server.url;
    const reference = await Promise.all(bodies.map((body) => streamCompletion({ url, body })));
    let chunks = 0;
    let faultAt = -1;
    const onChunk = (): void => {
      if (++chunks !== Math.floor((streams * outputLen) / 3)) return;
      faultAt = performance.now();
      signal(cluster.replicas.pid(0), fault);
      if (fault === 'SIGSTOP') resume = setTimeout(() => signal(cluster.replicas.pid(0), 'SIGCONT'), stopMs);
    };
    const runs = await Promise.all(bodies.map((body) => streamCompletion({ url, body, onChunk })));
    const down = cluster.events.find((event) => event.at > faultAt && event.line.startsWith(`replica ${cluster.urls[0]}: up → down`));
    const migrations = Object.fromEntries((await cluster.router.metrics.migrations.get()).values.map((value) => [String(value.labels.cause), value.value]));
    return {
      fault,
      streams,
      outputLen,
      detectMs: down ? down.at - faultAt : null,
      largestGapAfterFaultMs: Math.max(...runs.map((run) => largestGap(run, faultAt))),
      largestGapFaultFreeMs: Math.max(...reference.map((run) => largestGap(run))),
      tokensLost: runs.reduce((sum, run, i) => sum + Math.max(0, reference[i].chunkAt.length - run.chunkAt.length), 0),
      streamsIdentical: runs.filter((run, i) => run.text === reference[i].text && run.chunkAt.length === reference[i].chunkAt.length).length,
      migrations,
    };
  } finally {
    clearTimeout(resume);
    if (fault === 'SIGSTOP') signal(cluster.replicas.pid(0), 'SIGCONT');
    await stopCluster(cluster);
  }
}

/** Signals a replica that may already have exited (the router may have stopped it, or the run ended first). */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** The largest gap between consecutive tokens of a stream, counting only gaps that end after `from`. */
function largestGap(run: StreamedRun, from = -Infinity): number {
  let gap = 0;
  for (let i = 1; i < run.chunkAt.length; i++) if (run.chunkAt[i] > from) gap = Math.max(gap, run.chunkAt[i] - run.chunkAt[i - 1]);
  return gap;
}
