/**
 * A mix of OpenAI requests for comparing two endpoints byte for byte
 * (a router and one `tessera serve`): completions and chat, streamed and
 * whole, greedy and seeded sampling, n = 2, stop strings, penalties,
 * logprobs, a regex response_format, logit_bias. Each is sent with the official `openai` client and its raw
 * response body kept, with only what legitimately differs masked: response
 * ids, `created`, and cached-token counts (which depend on what else the
 * serving cache has seen).
 */
import OpenAI from 'openai';

export interface MixedRequest {
  route: 'completions' | 'chat';
  body: Record<string, unknown>;
}

const OPENINGS = ['Once upon a time', 'The little dog', 'Lily and Tom went to the park. They', 'One day, a girl named Sue', 'The sun was hot and', 'Tim had a red ball'];

/** `count` requests, deterministic: every kind appears, and about half run long with ignore_eos. */
export function requestMix(model: string, count: number, maxTokens = 160): MixedRequest[] {
  return Array.from({ length: count }, (_, i) => {
    const prompt = `${OPENINGS[i % OPENINGS.length]}${i % 4 === 3 ? ' and then' : ''}`;
    const body: Record<string, unknown> = { model, max_tokens: Math.round(maxTokens * (0.6 + 0.4 * ((i * 7) % 5) / 4)), temperature: 0 };
    if (i % 2 === 0) body.ignore_eos = true;
    if (i % 3 === 1) Object.assign(body, { temperature: 0.9, top_p: 0.95, seed: 1000 + i });
    if (i % 6 === 2) Object.assign(body, { n: 2, temperature: 0.8, seed: 500 + i });
    if (i % 5 === 4) body.stop = ['.', ' Lily'];
    if (i % 7 === 5) Object.assign(body, { presence_penalty: 0.6, frequency_penalty: 0.4, repetition_penalty: 1.15 });
    // Constrained decoding resumes too: the replica's grammar cursor is rebuilt from the delivered ids.
    if (i % 10 === 7) body.response_format = { type: 'regex', regex: '[A-Z][a-z]+( [a-z]+){3,40}\\.' };
    if (i % 11 === 6) body.logit_bias = { '300': 4, '301': -3 };
    if (i % 4 === 0) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
    if (i % 4 === 1) body.stream = true;
    if (i % 3 === 0) {
      const chat = { ...body, messages: [{ role: 'user', content: prompt }] };
      if (i % 9 === 0) Object.assign(chat, { logprobs: true, top_logprobs: 2 });
      return { route: 'chat', body: chat };
    }
    return { route: 'completions', body: { ...body, prompt, ...(i % 8 === 2 ? { logprobs: 2 } : {}) } };
  });
}

/**
 * Masks what may differ between two servers that generate the same tokens.
 * A stream's events are put in choice order (stably, so each choice's own
 * events keep their order): how the chunks of n choices interleave depends
 * on batch timing, even on one server.
 */
export function normalizeBody(text: string): string {
  const masked = text
    .replace(/"id":"(cmpl|chatcmpl)-[0-9a-f-]+"/g, '"id":"ID"')
    .replace(/"created":\d+/g, '"created":0')
    .replace(/"cached_tokens":\d+/g, '"cached_tokens":0');
  if (!masked.startsWith('data: ')) return masked;
  const events = masked.split('\n\n').filter((event) => event.length > 0);
  const choiceOf = (event: string): number => {
    if (event === 'data: [DONE]') return Number.MAX_SAFE_INTEGER;
    const choices = (JSON.parse(event.slice('data: '.length)) as { choices?: { index: number }[] }).choices ?? [];
    return choices[0]?.index ?? Number.MAX_SAFE_INTEGER - 1;
  };
  return events
    .map((event, order) => ({ event, order, choice: choiceOf(event) }))
    .sort((a, b) => a.choice - b.choice || a.order - b.order)
    .map(({ event }) => `${event}\n\n`)
    .join('');
}

export interface MixedResult {
  status: number;
  body: string;
  streamed: boolean;
}

/** Sends one request with the openai client and reads its raw body (an SSE stream is read to its end). */
export async function sendMixed(client: OpenAI, request: MixedRequest, onChunk?: () => void): Promise<MixedResult> {
  const promise =
    request.route === 'chat'
      ? client.chat.completions.create(request.body as unknown as OpenAI.Chat.ChatCompletionCreateParams)
      : client.completions.create(request.body as unknown as OpenAI.Completions.CompletionCreateParams);
  const response = await promise.asResponse();
  const decoder = new TextDecoder();
  let body = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    body += decoder.decode(chunk, { stream: true });
    onChunk?.();
  }
  return { status: response.status, body: normalizeBody(body), streamed: request.body.stream === true };
}
