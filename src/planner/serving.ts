/**
 * From a workload to TTFT, TPOT and throughput for one replica, under
 * continuous batching with chunked prefill (prompt chunks ride in the same
 * steps as the running sequences' decodes, within the step's token budget).
 *
 * - Burst (a static batch): every prompt is prefilled (chunk by chunk), then
 *   the batch decodes together; a request's TTFT is when its last prompt
 *   chunk completes.
 * - Steady state (closed loop, Poisson, offline): B sequences in flight, each
 *   step carries B decodes plus the prompts of the requests that replace
 *   finished ones; a request's cycle is its prompt's step(s) and O−1 decode
 *   steps, and Little's law gives the throughput (B / cycle).
 */
import { TesseraError } from '../core/errors.js';
import type { MemoryUse } from './memory.js';
import { iterationTime, passTime, type IterationTime, type Replica } from './replica.js';
import type { StepBatch } from './step-time.js';
import type { Workload } from './workload.js';

export type BatchLimit = 'workload' | 'kv-cache' | 'max-num-seqs';

export interface ServingResult {
  /** Mean time to first token; undefined when arrivals outpace the replica (the queue grows without bound). */
  readonly ttftMs: number | undefined;
  /** Mean time between output tokens of one request. */
  readonly tpotMs: number;
  readonly outputTokensPerSecond: number;
  readonly requestsPerSecond: number;
  /** Prompt tokens per second while prefilling (bursts: all prompts over the time to prefill them). */
  readonly prefillTokensPerSecond: number;
  /** Sequences decoding together (mean). */
  readonly batch: number;
  readonly batchLimit: BatchLimit;
  readonly saturated: boolean;
  /** The representative decode step. */
  readonly decode: IterationTime;
}

interface SequenceLimit {
  readonly sequences: number;
  readonly reason: BatchLimit;
}

function sequenceLimit(replica: Replica, memory: MemoryUse, tokensPerSequence: number): SequenceLimit {
  const byKv = Math.floor(memory.kvTokenCapacity / tokensPerSequence);
  if (byKv < 1) {
    throw new TesseraError(
      'TESSERA_ERR_PLAN_DOES_NOT_FIT',
      `one sequence needs ${Math.ceil(tokensPerSequence)} tokens of KV cache but only ${memory.kvTokenCapacity} fit beside the weights: use more devices (--tp/--pp), a smaller --weights-dtype or --kv-dtype, or shorter sequences`,
    );
  }
  const byRuntime = replica.hardware.runtime.maxNumSeqs;
  return byKv < byRuntime ? { sequences: byKv, reason: 'kv-cache' } : { sequences: byRuntime, reason: 'max-num-seqs' };
}

function decodeBatch(sequences: number, context: number, prefillTokens: number, prefillContext: number): StepBatch {
  return { decodeTokens: sequences, decodeContext: context, prefillTokens, prefillContext, logitRows: sequences };
}

/** A static batch of `count` requests: prefill all prompts in chunks, then decode together. */
function burstWave(replica: Replica, workload: Workload, count: number): { ttftSumMs: number; prefillMs: number; tpotMs: number; decode: IterationTime } {
  const { inputLength: input, outputLength: output } = workload;
  const budget = replica.hardware.runtime.maxBatchTokens;
  let done = 0;
  let clock = 0;
  let ttftSumMs = 0;
  let finished = 0;
  const total = count * input;
  for (let chunk = 0; done < total; chunk++) {
    const tokens = Math.min(budget, total - done);
    const nowFinished = Math.floor((done + tokens) / input) - finished;
    const batch: StepBatch = { decodeTokens: 0, decodeContext: 0, prefillTokens: tokens, prefillContext: input / 2, logitRows: nowFinished };
    // The first chunk runs through every stage before anything comes out; later chunks follow it down the pipeline.
    clock += chunk === 0 ? passTime(replica, batch, count) : iterationTime(replica, batch, count).ms;
    done += tokens;
    finished += nowFinished;
    ttftSumMs += nowFinished * clock;
  }
  const decode = iterationTime(replica, decodeBatch(count, input + output / 2, 0, 0), count);
  return { ttftSumMs, prefillMs: clock, tpotMs: decode.ms, decode };
}

function burstResult(replica: Replica, workload: Workload, clients: number, limit: SequenceLimit): ServingResult {
  const batch = Math.min(clients, limit.sequences);
  const output = workload.outputLength;
  const waves: number[] = [];
  for (let left = clients; left > 0; left -= batch) waves.push(Math.min(batch, left));
  let clock = 0;
  let ttftSumMs = 0;
  let first: ReturnType<typeof burstWave> | undefined;
  for (const size of waves) {
    const wave = burstWave(replica, workload, size);
    first ??= wave;
    ttftSumMs += clock * size + wave.ttftSumMs;
    clock += wave.prefillMs + (output - 1) * wave.tpotMs;
  }
  const wave = first as ReturnType<typeof burstWave>;
  return {
    ttftMs: ttftSumMs / clients,
    tpotMs: wave.tpotMs,
    outputTokensPerSecond: (clients * output * 1000) / clock,
    requestsPerSecond: (clients * 1000) / clock,
    prefillTokensPerSecond: (waves[0] * workload.inputLength * 1000) / wave.prefillMs,
    batch,
    batchLimit: clients > limit.sequences ? limit.reason : 'workload',
    saturated: false,
    decode: wave.decode,
  };
}

interface SteadyCycle {
  readonly decode: IterationTime;
  readonly ttftServiceMs: number;
  readonly cycleMs: number;
  readonly prefillTokensPerSecond: number;
}

/** B sequences in flight: a decode step carries the prompts of the others' successors. */
function steadyCycle(replica: Replica, workload: Workload, sequences: number): SteadyCycle {
  const { inputLength: input, outputLength: output } = workload;
  const context = input + output / 2;
  const others = Math.max(0, sequences - 1);
  const decode = iterationTime(replica, decodeBatch(sequences, context, (others * input) / output, input / 2), sequences);
  const room = Math.max(1, replica.hardware.runtime.maxBatchTokens - others);
  const chunks = Math.ceil(input / room);
  const chunk = decodeBatch(others, context, Math.min(input, room), input / 2);
  const chunkMs = passTime(replica, { ...chunk, logitRows: others + 1 }, sequences);
  const ttftServiceMs = chunks * Math.max(chunkMs, decode.ms);
  return { decode, ttftServiceMs, cycleMs: ttftServiceMs + (output - 1) * decode.ms, prefillTokensPerSecond: (input * 1000) / ttftServiceMs };
}

function steadyResult(replica: Replica, workload: Workload, sequences: number, clients: number, limit: BatchLimit): ServingResult {
  const cycle = steadyCycle(replica, workload, sequences);
  const requestsPerSecond = (sequences * 1000) / cycle.cycleMs;
  // Clients beyond the batch queue: each waits for C / X in all (Little's law), the wait before its first token.
  const responseMs = (clients * 1000) / requestsPerSecond;
  return {
    ttftMs: responseMs - (workload.outputLength - 1) * cycle.decode.ms,
    tpotMs: cycle.decode.ms,
    outputTokensPerSecond: requestsPerSecond * workload.outputLength,
    requestsPerSecond,
    prefillTokensPerSecond: cycle.prefillTokensPerSecond,
    batch: sequences,
    batchLimit: limit,
    saturated: false,
    decode: cycle.decode,
  };
}

/** Poisson arrivals: the batch B that sustains qps solves B = qps × cycle(B); none does beyond the replica's capacity. */
function poissonResult(replica: Replica, workload: Workload, qps: number, limit: SequenceLimit): ServingResult {
  let sequences = 1;
  for (let round = 0; round < 100; round++) {
    const next = Math.max(1, (qps * steadyCycle(replica, workload, sequences).cycleMs) / 1000);
    if (next > limit.sequences) {
      const full = steadyResult(replica, workload, limit.sequences, limit.sequences, limit.reason);
      return { ...full, ttftMs: undefined, saturated: true };
    }
    if (Math.abs(next - sequences) < 1e-6 * next) break;
    sequences = next;
  }
  const cycle = steadyCycle(replica, workload, sequences);
  return {
    // An arrival waits on average half a step before it joins the batch.
    ttftMs: cycle.ttftServiceMs + cycle.decode.ms / 2,
    tpotMs: cycle.decode.ms,
    outputTokensPerSecond: qps * workload.outputLength,
    requestsPerSecond: qps,
    prefillTokensPerSecond: cycle.prefillTokensPerSecond,
    batch: sequences,
    batchLimit: 'workload',
    saturated: false,
    decode: cycle.decode,
  };
}

export function serveReplica(replica: Replica, memory: MemoryUse, workload: Workload): ServingResult {
  const { inputLength: input, outputLength: output, arrival } = workload;
  const whole = sequenceLimit(replica, memory, input + output);
  if (workload.burst) {
    if (arrival.kind !== 'closed') throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', '--burst takes --concurrency N (a batch of N requests that start together)');
    return burstResult(replica, workload, arrival.concurrency, whole);
  }
  // Running sequences hold half their output on average; vLLM-style admission packs them by what they hold now.
  const steady = sequenceLimit(replica, memory, input + output / 2);
  switch (arrival.kind) {
    case 'closed': {
      const sequences = Math.min(arrival.concurrency, steady.sequences);
      return steadyResult(replica, workload, sequences, arrival.concurrency, arrival.concurrency > steady.sequences ? steady.reason : 'workload');
    }
    case 'poisson':
      return poissonResult(replica, workload, arrival.qps, steady);
    case 'max':
      // Offline runs admit what the whole sequence will need (TensorRT-LLM's no-evict scheduling).
      return steadyResult(replica, workload, whole.sequences, whole.sequences, whole.reason);
  }
}
