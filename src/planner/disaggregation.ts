/**
 * `tessera plan --pd`: disaggregated prefill and decode on the same devices
 * as N colocated replicas (the layout's dp), and whether it pays.
 *
 * P prefill replicas run prompts alone (chunk after chunk, no decodes in
 * their steps); each prompt's KV (input × layers × KV elements) streams to
 * one of D decode replicas layer by layer as it is computed, so only what
 * the link cannot hide behind the prefill shows; decode replicas run
 * decode-only steps. Throughput X (requests/s) is the fixed point of the
 * arrivals and the two pools: the prefill pool is a queue (M/D/P-ish: an
 * M/D/1 wait per replica at utilisation ρ = X × prefill / P), the decode
 * batch B per replica solves B = X / D × (O − 1) × step(B) (Little). The
 * colocated answer is planDeployment with dp = P + D.
 *
 * What disaggregation buys is the decode tail: the mean TPOT spreads the
 * colocated steps that carry a prompt chunk over all steps (and on a
 * memory-bound step a chunk below the ridge point is nearly free), but a
 * stream sees such a step whole. So it pays when the p99 gap between
 * tokens beats the colocated one at 90% or more of its throughput with
 * neither pool saturated; a lower tail for less throughput is a trade.
 */
import { TesseraError } from '../core/errors.js';
import { collectiveMs, groupLink } from './collectives.js';
import { ranksPerReplica } from './layout.js';
import { memoryUse } from './memory.js';
import { kvElementsPerToken } from './model-shape.js';
import { buildReplica, planDeployment, type PlanInput, type PlanResult } from './plan.js';
import { kvBytes } from './precision.js';
import { iterationTime, passTime, type Replica } from './replica.js';

export interface PdSplit {
  readonly prefill: number;
  readonly decode: number;
}

export interface PdPlan {
  readonly split: PdSplit;
  /** Mean time to first token (the prefill replica's); null when arrivals outpace a pool. */
  readonly ttftMs: number | null;
  /** Mean time between output tokens, the exposed transfer before the second included. */
  readonly tpotMs: number;
  /** The 99th-percentile gap between two tokens of a stream (a decode step; the gap before the second token when that is 1% of a stream's gaps). */
  readonly p99GapMs: number;
  readonly outputTokensPerSecond: number;
  readonly requestsPerSecond: number;
  /** Poisson arrivals beyond a pool's capacity: its queue grows without bound. */
  readonly saturated: false | 'prefill' | 'decode';
  /** The pool running at capacity, if one is (closed loops and offline runs: it sets the throughput). */
  readonly bound?: 'prefill' | 'decode';
  readonly prefill: { readonly replicas: number; readonly promptMs: number; readonly utilization: number; readonly waitMs: number };
  readonly transfer: { readonly bytesPerRequest: number; readonly link: string; readonly ms: number; readonly exposedMs: number };
  readonly decode: { readonly replicas: number; readonly batch: number; readonly maxBatch: number; readonly stepMs: number };
}

export interface PdComparison {
  readonly disaggregated: PdPlan;
  /** Every split of the replicas that was weighed (the chosen one among them). */
  readonly candidates: readonly PdPlan[];
  readonly colocated: PlanResult;
  readonly colocatedTail: DecodeTail;
  /** A lower p99 gap between tokens at (nearly) the colocated throughput. */
  readonly pays: boolean;
  /** pays; trades: lower TPOT for less throughput; no: no lower TPOT, or a pool saturates. */
  readonly outcome: 'pays' | 'trades' | 'no';
  readonly verdict: string;
}

/** Below this share of the colocated output, a lower tail is a trade, not a win. */
const THROUGHPUT_KEPT = 0.9;

/** Gaps this common or more set the 99th percentile. */
const TAIL = 0.01;

/**
 * The colocated streams' worst gaps: a step that carries a prompt chunk
 * (the chunk fills what the decodes leave of the step's tokens). The mean
 * TPOT spreads those steps over all; a stream sees them whole, and once
 * they are 1% of its steps or more they are its p99 gap.
 */
export interface DecodeTail {
  readonly p99GapMs: number;
  /** A decode step with a prompt chunk in it. */
  readonly stallMs: number;
  /** The share of a stream's steps that carry a chunk. */
  readonly stallShare: number;
}

function colocatedTail(input: PlanInput, colocated: PlanResult): DecodeTail {
  const replica = buildReplica({ ...input, layout: colocated.layout });
  const { inputLength, outputLength } = input.workload;
  const batch = Math.max(1, colocated.batch);
  const room = Math.max(1, input.hardware.runtime.maxBatchTokens - batch);
  const chunk = Math.min(inputLength, room);
  const stallMs = iterationTime(replica, { decodeTokens: batch, decodeContext: inputLength + outputLength / 2, prefillTokens: chunk, prefillContext: inputLength / 2, logitRows: batch }, batch).ms;
  // Chunk steps per second on one replica, over its steps per second.
  const chunkSteps = (colocated.requestsPerSecond / colocated.layout.dp) * Math.ceil(inputLength / room);
  const stallShare = Math.min(1, (chunkSteps * colocated.tpotMs) / 1000);
  return { p99GapMs: stallShare >= TAIL ? Math.max(stallMs, colocated.tpotMs) : colocated.tpotMs, stallMs, stallShare };
}

/** What does not depend on the throughput: a prompt's prefill, its transfer, the decode step as a function of the batch. */
interface PoolCosts {
  readonly promptMs: number;
  readonly transfer: PdPlan['transfer'];
  readonly maxBatch: number;
  readonly step: (batch: number) => number;
}

/** A prompt alone on a prefill replica, chunk after chunk (the first chunk passes every stage first). */
function promptMs(replica: Replica, input: number): number {
  const budget = replica.hardware.runtime.maxBatchTokens;
  let ms = 0;
  for (let done = 0; done < input; done += budget) {
    const tokens = Math.min(budget, input - done);
    const batch = { decodeTokens: 0, decodeContext: 0, prefillTokens: tokens, prefillContext: done + tokens / 2, logitRows: done + tokens >= input ? 1 : 0 };
    ms += done === 0 ? passTime(replica, batch, 1) : iterationTime(replica, batch, 1).ms;
  }
  return ms;
}

function poolCosts(input: PlanInput, replicas: number): PoolCosts {
  const replica = buildReplica({ ...input, layout: { ...input.layout, dp: replicas } });
  const memory = memoryUse(replica, input.kvCacheGiB);
  const { inputLength, outputLength } = input.workload;
  const prompt = promptMs(replica, inputLength);
  const bytes = inputLength * input.shape.numLayers * kvElementsPerToken(input.shape) * kvBytes(input.kv);
  // Replicas of one node move KV over its interconnect (one CPU host: its local transport), else over the network.
  const link = groupLink(input.hardware, replicas * ranksPerReplica({ ...input.layout, dp: 1 }), replica.placement.ranksPerDevice);
  const ms = collectiveMs(link, 'send', bytes, 2);
  const wire = ms - link.latencyUs / 1000;
  // Rows leave as each layer computes: the last layer's share always shows, the rest only where the wire is slower than the prefill.
  const exposedMs = link.latencyUs / 1000 + Math.max(wire / input.shape.numLayers, wire - prompt);
  const context = inputLength + outputLength / 2;
  const maxBatch = Math.max(0, Math.min(input.hardware.runtime.maxNumSeqs, Math.floor(memory.kvTokenCapacity / context)));
  if (maxBatch < 1) throw new TesseraError('TESSERA_ERR_PLAN_DOES_NOT_FIT', `one sequence needs ${Math.ceil(context)} tokens of KV cache but a decode replica holds ${memory.kvTokenCapacity}`);
  const step = (batch: number): number => iterationTime(replica, { decodeTokens: batch, decodeContext: context, prefillTokens: 0, prefillContext: 0, logitRows: batch }, batch).ms;
  return { promptMs: prompt, transfer: { bytesPerRequest: bytes, link: link.name, ms, exposedMs }, maxBatch, step };
}

/** The decode batch per replica that carries X requests/s: B = X / D × (O − 1) × step(B). */
function decodeBatch(costs: PoolCosts, perReplicaRps: number, outputLength: number): number {
  let batch = 1;
  for (let round = 0; round < 100; round++) {
    const next = Math.max(1, (perReplicaRps * (outputLength - 1) * costs.step(batch)) / 1000);
    if (Math.abs(next - batch) < 1e-6 * next) return next;
    batch = next;
  }
  return batch;
}

/** The pools at throughput X. */
function atThroughput(input: PlanInput, split: PdSplit, costs: PoolCosts, rps: number, saturated: PdPlan['saturated']): PdPlan {
  const output = input.workload.outputLength;
  const utilization = (rps * costs.promptMs) / 1000 / split.prefill;
  const waitMs = utilization >= 1 ? Infinity : (utilization / (2 * (1 - utilization))) * costs.promptMs;
  const batch = Math.min(costs.maxBatch, decodeBatch(costs, rps / split.decode, output));
  const stepMs = costs.step(batch);
  // The second token waits for the transfer's exposed part and half a step to join the running batch.
  const secondGapMs = costs.transfer.exposedMs + stepMs / 2 + stepMs;
  const tpotMs = output > 1 ? ((output - 2) * stepMs + secondGapMs) / (output - 1) : 0;
  const p99GapMs = output > 1 && 1 / (output - 1) >= TAIL ? Math.max(stepMs, secondGapMs) : stepMs;
  const ttftMs = saturated ? null : waitMs + costs.promptMs;
  return {
    split,
    ttftMs,
    tpotMs,
    p99GapMs,
    outputTokensPerSecond: rps * output,
    requestsPerSecond: rps,
    saturated,
    prefill: { replicas: split.prefill, promptMs: costs.promptMs, utilization: Math.min(1, utilization), waitMs: Number.isFinite(waitMs) ? waitMs : 0 },
    transfer: costs.transfer,
    decode: { replicas: split.decode, batch, maxBatch: costs.maxBatch, stepMs },
  };
}

/** The requests/s each pool can carry at most, and which one binds. */
function capacity(split: PdSplit, costs: PoolCosts, outputLength: number): { rps: number; pool: 'prefill' | 'decode' } {
  const prefill = (split.prefill * 1000) / costs.promptMs;
  const decode = (split.decode * costs.maxBatch * 1000) / (Math.max(1, outputLength - 1) * costs.step(costs.maxBatch));
  return prefill <= decode ? { rps: prefill, pool: 'prefill' } : { rps: decode, pool: 'decode' };
}

/** One split under the workload's arrivals. */
export function planSplit(input: PlanInput, split: PdSplit): PdPlan {
  if (split.prefill < 1 || split.decode < 1) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--pd needs at least one prefill and one decode replica; got ${split.prefill}:${split.decode}`);
  if (input.workload.burst) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', '--pd models steady arrivals (--concurrency, --qps, max), not --burst');
  const costs = poolCosts(input, split.prefill + split.decode);
  const output = input.workload.outputLength;
  const limit = capacity(split, costs, output);
  const arrival = input.workload.arrival;
  if (arrival.kind === 'max') return { ...atThroughput(input, split, costs, limit.rps, false), ttftMs: null, bound: limit.pool };
  if (arrival.kind === 'poisson') return arrival.qps >= limit.rps ? atThroughput(input, split, costs, limit.rps * 0.999, limit.pool) : atThroughput(input, split, costs, arrival.qps, false);
  // Closed loop: C clients, each cycle a wait, a prompt, the exposed transfer and O − 1 steps; X = C / cycle, by bisection (the cycle grows with X).
  const cycleMs = (rps: number): number => {
    const plan = atThroughput(input, split, costs, rps, false);
    return plan.prefill.waitMs + costs.promptMs + plan.tpotMs * Math.max(1, output - 1);
  };
  const clients = arrival.concurrency;
  const top = limit.rps * 0.999;
  if ((clients * 1000) / cycleMs(top) >= top) {
    // More clients than the pools carry: they queue (a closed loop never overflows); TTFT is what Little's law leaves of their response time.
    const plan = atThroughput(input, split, costs, top, false);
    return { ...plan, ttftMs: (clients * 1000) / top - plan.tpotMs * Math.max(1, output - 1), bound: limit.pool };
  }
  let low = 0;
  let high = top;
  for (let round = 0; round < 60; round++) {
    const mid = (low + high) / 2;
    if ((clients * 1000) / cycleMs(mid) > mid) low = mid;
    else high = mid;
  }
  const plan = atThroughput(input, split, costs, low, false);
  // Within 5% of a pool's capacity, that pool sets the pace.
  return low >= 0.95 * limit.rps ? { ...plan, bound: limit.pool } : plan;
}

function describe(plan: PdPlan): string {
  return `${plan.split.prefill} prefill + ${plan.split.decode} decode`;
}

/** The best split: the most output (then the lowest tail) among those with a lower p99 gap than colocated, unsaturated; else the lowest tail. */
function choose(candidates: readonly PdPlan[], tail: DecodeTail): PdPlan {
  const winning = candidates.filter((plan) => !plan.saturated && plan.p99GapMs < tail.p99GapMs);
  // Within 0.1% the outputs are equal (Poisson arrivals: every unsaturated split carries the same).
  const better = (a: PdPlan, b: PdPlan): PdPlan => (b.outputTokensPerSecond > a.outputTokensPerSecond * 1.001 || (b.outputTokensPerSecond > a.outputTokensPerSecond * 0.999 && b.p99GapMs < a.p99GapMs) ? b : a);
  if (winning.length > 0) return winning.reduce(better);
  const open = candidates.filter((plan) => !plan.saturated);
  return (open.length > 0 ? open : candidates).reduce((a, b) => (b.p99GapMs < a.p99GapMs ? b : a));
}

function verdictOf(plan: PdPlan, colocated: PlanResult, tail: DecodeTail): { outcome: PdComparison['outcome']; verdict: string } {
  const gaps = `p99 gap between tokens ${plan.p99GapMs.toFixed(1)} ms vs ${tail.p99GapMs.toFixed(1)} ms colocated (a step with a prompt chunk takes ${tail.stallMs.toFixed(1)} ms, ${(tail.stallShare * 100).toFixed(1)}% of a stream's steps), mean TPOT ${plan.tpotMs.toFixed(1)} vs ${colocated.tpotMs.toFixed(1)} ms`;
  const throughput = `${plan.outputTokensPerSecond.toFixed(0)} vs ${colocated.outputTokensPerSecond.toFixed(0)} output tok/s`;
  const transfer = `${(plan.transfer.bytesPerRequest / 2 ** 20).toFixed(1)} MiB of KV per request over ${plan.transfer.link} in ${plan.transfer.ms.toFixed(1)} ms, ${plan.transfer.exposedMs.toFixed(1)} ms of it not hidden by the prefill`;
  if (plan.saturated || colocated.saturated) {
    const which = plan.saturated ? `the ${plan.saturated} pool of ${describe(plan)} replicas cannot keep up with the arrivals` : 'the colocated replicas cannot keep up with the arrivals either';
    return { outcome: 'no', verdict: `does not pay here: ${which} (${throughput}); ${transfer}` };
  }
  if (plan.p99GapMs >= tail.p99GapMs) return { outcome: 'no', verdict: `does not pay: ${describe(plan)} replicas do not cut the decode tail (${gaps}): prompt chunks stall the colocated decodes less than the decode replicas lose (fewer replicas, larger batches, the transfer before the second token); ${transfer}` };
  if (plan.outputTokensPerSecond < THROUGHPUT_KEPT * colocated.outputTokensPerSecond) {
    return { outcome: 'trades', verdict: `trades throughput for latency: ${describe(plan)} replicas, ${gaps}, but ${throughput} (the ${plan.bound ?? 'busier'} pool is the bottleneck); ${transfer}` };
  }
  return { outcome: 'pays', verdict: `pays: ${describe(plan)} replicas, ${gaps} (prompt chunks no longer stall decodes), ${throughput}; ${transfer}` };
}

/** `split` given: that one; else every split of the layout's dp replicas (two when dp is 1). */
export function planDisaggregated(input: PlanInput, split?: PdSplit): PdComparison {
  const replicas = split ? split.prefill + split.decode : Math.max(2, input.layout.dp);
  const colocated = planDeployment({ ...input, layout: { ...input.layout, dp: replicas } });
  const splits = split ? [split] : Array.from({ length: replicas - 1 }, (_, i) => ({ prefill: i + 1, decode: replicas - i - 1 }));
  const candidates = splits.map((each) => planSplit(input, each));
  const colocatedTailOf = colocatedTail(input, colocated);
  const chosen = choose(candidates, colocatedTailOf);
  const { outcome, verdict } = verdictOf(chosen, colocated, colocatedTailOf);
  return { disaggregated: chosen, candidates, colocated, colocatedTail: colocatedTailOf, pays: outcome === 'pays', outcome, verdict };
}

/** `--pd P:D`. */
export function parsePdSplit(text: string): PdSplit {
  const match = /^(\d+):(\d+)$/.exec(text.trim());
  if (!match || Number(match[1]) < 1 || Number(match[2]) < 1) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--pd takes PREFILL:DECODE replica counts such as 1:1 or 2:6; got "${text}"`);
  return { prefill: Number(match[1]), decode: Number(match[2]) };
}
