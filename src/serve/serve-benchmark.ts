/**
 * Load generator for `tessera bench serve`: at each concurrency level, that
 * many clients each stream `rounds` completions one after another (fixed
 * prompt length of distinct random ids, so no prefix-cache hits; ignore_eos,
 * so every request generates exactly the output length). Measures output
 * tokens per second over the level's wall time, and per request the time to
 * first token and the mean time per output token after it.
 */
import { sseData } from './sse-data.js';

export interface ServeBenchmarkOptions {
  url: string;
  model: string;
  apiKey?: string;
  vocabSize: number;
  promptLen: number;
  outputLen: number;
  rounds: number;
  seed: number;
  /** Sent with every request when set (the constrained half of --response-format). */
  responseFormat?: Record<string, unknown>;
}

export interface Percentiles {
  p50: number;
  p99: number;
}

export interface LevelResult {
  concurrency: number;
  requests: number;
  outputTokens: number;
  wallSeconds: number;
  outputTokensPerSecond: number;
  ttftMs: Percentiles;
  tpotMs: Percentiles;
}

interface RequestTiming {
  tokens: number;
  ttftMs: number;
  tpotMs: number;
}

export async function benchmarkLevel(options: ServeBenchmarkOptions, concurrency: number): Promise<LevelResult> {
  const timings: RequestTiming[] = [];
  let next = 0;
  const client = async (): Promise<void> => {
    for (let round = 0; round < options.rounds; round++) timings.push(await timedRequest(options, promptIds(options, next++)));
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, client));
  const wallSeconds = (performance.now() - started) / 1000;
  const outputTokens = timings.reduce((sum, timing) => sum + timing.tokens, 0);
  return {
    concurrency,
    requests: timings.length,
    outputTokens,
    wallSeconds,
    outputTokensPerSecond: outputTokens / wallSeconds,
    ttftMs: percentiles(timings.map((timing) => timing.ttftMs)),
    tpotMs: percentiles(timings.map((timing) => timing.tpotMs)),
  };
}

/** Distinct pseudo-random ids per request (ids 0-2 are usually control tokens). */
function promptIds(options: ServeBenchmarkOptions, request: number): number[] {
  let state = (options.seed * 1_000_003 + request * 7919 + 1) >>> 0;
  return Array.from({ length: options.promptLen }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return 3 + (state % (options.vocabSize - 3));
  });
}

async function timedRequest(options: ServeBenchmarkOptions, prompt: number[]): Promise<RequestTiming> {
  const started = performance.now();
  const response = await fetch(`${options.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}) },
    body: JSON.stringify({
      model: options.model,
      prompt,
      max_tokens: options.outputLen,
      temperature: 0,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
      ...(options.responseFormat ? { response_format: options.responseFormat } : {}),
    }),
  });
  if (!response.ok || !response.body) throw new Error(`benchmark request failed: ${response.status} ${await response.text()}`);
  let first: number | undefined;
  let tokens = 0;
  for await (const data of sseData(response.body as AsyncIterable<Uint8Array>)) {
    const chunk = data as { choices: unknown[]; usage?: { completion_tokens: number } | null };
    if (chunk.choices.length > 0 && first === undefined) first = performance.now();
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
  }
  const ended = performance.now();
  const ttft = (first ?? ended) - started;
  return { tokens, ttftMs: ttft, tpotMs: tokens > 1 ? (ended - (first ?? ended)) / (tokens - 1) : 0 };
}

/** Nearest-rank percentiles. */
export function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);
  return { p50: at(50), p99: at(99) };
}
