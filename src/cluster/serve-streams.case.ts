/**
 * Helpers for tests that serve on a mesh while it changes: 16 concurrent
 * streamed completions through the real `openai` client (half greedy, half
 * seeded sampling), a hook once every stream is mid-generation, and the
 * admin routes.
 */
import OpenAI from 'openai';
import type { ClusterView } from './cluster-view.js';
import { launchServer, type LaunchOptions } from '../serve/launch.js';
import type { TesseraServer } from '../serve/server.js';

export const STREAMS = 16;
export const ADMIN_KEY = 'test-admin-key';
/** Tolerant of a loaded machine: a stall this long is taken for a hang. */
export const TEST_HEARTBEAT = { intervalMs: 250, timeoutMs: 3000 };

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom went to the park. They', 'One day', 'The sun', 'A girl named Sue', 'Tim had a red ball', 'In the forest'];

export function serve(model: string, mesh?: LaunchOptions['mesh']): Promise<TesseraServer> {
  return launchServer({ model, backend: 'reference', port: 0, servedModelName: 'stories', adminKey: ADMIN_KEY, core: { kvCacheMib: 4, maxNumSeqs: STREAMS }, mesh });
}

export interface StreamOptions {
  /** `midway` runs once every stream has received this many chunks. */
  after?: number;
  midway?: () => Promise<void> | void;
  /** Tokens of the first stream; the others ask for a few more each (default 40). */
  maxTokens?: number;
}

/** The texts of STREAMS concurrent streams; a `midway` hook's promise is awaited before they are returned. */
export async function streamAll(server: TesseraServer, { after = 8, midway, maxTokens = 40 }: StreamOptions = {}): Promise<string[]> {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 300_000 });
  const chunks = new Array<number>(STREAMS).fill(0);
  let fired: Promise<void> | undefined;
  const texts = await Promise.all(
    Array.from({ length: STREAMS }, async (_, i) => {
      const sampled = i % 2 === 1;
      const stream = await client.completions.create({
        model: 'stories',
        prompt: PROMPTS[i % PROMPTS.length],
        max_tokens: maxTokens + (i % 4) * 4,
        temperature: sampled ? 0.9 : 0,
        seed: sampled ? 100 + i : undefined,
        stream: true,
        ignore_eos: true,
      } as OpenAI.Completions.CompletionCreateParamsStreaming);
      let text = '';
      for await (const chunk of stream) {
        text += chunk.choices[0]?.text ?? '';
        chunks[i]++;
        if (!fired && midway && chunks.every((count) => count >= after)) fired = Promise.resolve(midway());
      }
      return text;
    }),
  );
  await fired;
  return texts;
}

export async function adminCall(server: TesseraServer, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: ClusterView & { error?: { code: string } } }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as ClusterView & { error?: { code: string } } };
}

export async function clusterOf(server: TesseraServer): Promise<ClusterView> {
  const { status, json } = await adminCall(server, 'GET', '/admin/cluster');
  if (status !== 200) throw new Error(`GET /admin/cluster: ${status} ${JSON.stringify(json)}`);
  return json;
}
