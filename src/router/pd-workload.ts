/**
 * The workload of `tessera bench pd`: `streams` clients decode back to back
 * (short prompts, `streamOutputLen` tokens each, a new request as soon as
 * the last ends) while `longPrompts` prompts of `longPromptLen` tokens
 * arrive `intervalMs` apart, the first once every stream has its first
 * token. The clients stop starting requests when the last long prompt is
 * answered. On one replica each long prompt's chunks ride in the decode
 * steps and stall every stream; disaggregated, they are prefilled
 * elsewhere. All prompts are distinct random ids (no prefix hits), greedy,
 * `ignore_eos`, so both deployments compute the same tokens.
 */
import { percentiles, type Percentiles } from '../serve/serve-benchmark.js';
import { randomIds, streamCompletion, type StreamedRun } from './bench-client.js';

export interface PdWorkload {
  streams: number;
  streamPromptLen: number;
  streamOutputLen: number;
  longPrompts: number;
  longPromptLen: number;
  longOutputLen: number;
  intervalMs: number;
}

/** Where the workload is sent: a replica, or a router. */
export interface WorkloadTarget {
  url: string;
  apiKey?: string;
  model: string;
  vocabSize: number;
}

export interface LatencySummary {
  requests: number;
  outputTokens: number;
  /** Sent → first token. */
  ttftMs: Percentiles;
  /** Per request: (last token − first token) / (tokens − 1), the usual TPOT. */
  tpotMs: Percentiles;
}

export interface WorkloadResult {
  /** From the first stream request to the last answer (warm-up excluded). */
  wallSeconds: number;
  outputTokensPerSecond: number;
  streams: LatencySummary & {
    /** Every gap between two tokens of one stream (time between tokens): what a prefill stall shows in. */
    itlMs: Percentiles & { max: number; gaps: number };
  };
  longPrompts: LatencySummary;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One warm-up request (every replica on its path touches all its weights), then the workload. */
export async function runPdWorkload(target: WorkloadTarget, workload: PdWorkload): Promise<WorkloadResult> {
  const send = (prompt: number[], maxTokens: number, onChunk?: () => void): Promise<StreamedRun> =>
    streamCompletion({ url: target.url, apiKey: target.apiKey, body: { model: target.model, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true }, onChunk });
  await send(randomIds(16, target.vocabSize, 1), 4);

  const streamRuns: StreamedRun[] = [];
  let stop = false;
  let decoding = 0;
  let allDecoding!: () => void;
  const everyStreamDecodes = new Promise<void>((resolve) => (allDecoding = resolve));
  const client = async (index: number): Promise<void> => {
    for (let round = 0; !stop; round++) {
      let first = round === 0;
      const onChunk = (): void => {
        if (first && ++decoding === workload.streams) allDecoding();
        first = false;
      };
      streamRuns.push(await send(randomIds(workload.streamPromptLen, target.vocabSize, 1000 + index * 10_000 + round), workload.streamOutputLen, onChunk));
    }
  };
  const started = performance.now();
  const clients = Promise.all(Array.from({ length: workload.streams }, (_, index) => client(index)));
  void clients.catch(() => undefined); // awaited below; this only keeps an early failure from counting as unhandled
  let longRuns: StreamedRun[];
  try {
    // A stream that fails before every stream decodes ends the run (its error, not a wait forever).
    await Promise.race([everyStreamDecodes, clients]);
    longRuns = await Promise.all(
      Array.from({ length: workload.longPrompts }, async (_, index) => {
        await sleep(index * workload.intervalMs);
        return send(randomIds(workload.longPromptLen, target.vocabSize, 50 + index), workload.longOutputLen);
      }),
    );
  } finally {
    stop = true;
  }
  await clients;
  const wallSeconds = (performance.now() - started) / 1000;
  const tokens = [...streamRuns, ...longRuns].reduce((sum, run) => sum + run.chunkAt.length, 0);
  return { wallSeconds, outputTokensPerSecond: tokens / wallSeconds, streams: { ...summary(streamRuns), itlMs: gapsOf(streamRuns) }, longPrompts: summary(longRuns) };
}

function summary(runs: readonly StreamedRun[]): LatencySummary {
  const answered = runs.filter((run) => run.chunkAt.length > 0);
  return {
    requests: runs.length,
    outputTokens: runs.reduce((sum, run) => sum + run.chunkAt.length, 0),
    ttftMs: percentiles(answered.map((run) => run.chunkAt[0] - run.sentAt)),
    tpotMs: percentiles(answered.filter((run) => run.chunkAt.length > 1).map((run) => (run.chunkAt[run.chunkAt.length - 1] - run.chunkAt[0]) / (run.chunkAt.length - 1))),
  };
}

function gapsOf(runs: readonly StreamedRun[]): Percentiles & { max: number; gaps: number } {
  const gaps = runs.flatMap((run) => run.chunkAt.slice(1).map((at, i) => at - run.chunkAt[i]));
  return { ...percentiles(gaps), max: gaps.length === 0 ? 0 : Math.max(...gaps), gaps: gaps.length };
}
