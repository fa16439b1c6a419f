/** A streaming completions client for the router benchmark: every chunk's arrival time and text. */
import { sseData } from '../serve/sse-data.js';

export interface StreamedRun {
  /** performance.now() when the request was sent, and when each token's chunk arrived. */
  sentAt: number;
  chunkAt: number[];
  text: string;
  endedAt: number;
}

export interface StreamRequest {
  url: string;
  apiKey?: string;
  body: Record<string, unknown>;
  /** Called with each chunk's arrival time (to fire faults mid-run). */
  onChunk?: (at: number) => void;
}

export async function streamCompletion(request: StreamRequest): Promise<StreamedRun> {
  const sentAt = performance.now();
  const response = await fetch(`${request.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(request.apiKey ? { authorization: `Bearer ${request.apiKey}` } : {}) },
    body: JSON.stringify({ ...request.body, stream: true }),
  });
  if (!response.ok || !response.body) throw new Error(`benchmark request failed: ${response.status} ${await response.text()}`);
  const run: StreamedRun = { sentAt, chunkAt: [], text: '', endedAt: sentAt };
  for await (const data of sseData(response.body as AsyncIterable<Uint8Array>)) {
    const chunk = data as { choices: { text: string }[]; error?: { message: string } };
    if (chunk.error) throw new Error(`benchmark stream failed: ${chunk.error.message}`);
    if (chunk.choices.length === 0) continue;
    const at = performance.now();
    run.chunkAt.push(at);
    run.text += chunk.choices[0].text;
    request.onChunk?.(at);
  }
  run.endedAt = performance.now();
  return run;
}

/** Deterministic pseudo-random token ids in [3, vocabSize) (ids below 3 are usually control tokens). */
export function randomIds(count: number, vocabSize: number, seed: number): number[] {
  let state = (seed * 1_000_003 + 1) >>> 0;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return 3 + (state % (vocabSize - 3));
  });
}

/** A seeded Fisher–Yates shuffle. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = (seed * 2_654_435_761) >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}
