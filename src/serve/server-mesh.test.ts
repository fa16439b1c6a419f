/** `tessera serve --tp 2 --pp 2`: the engine core drives a mesh of rank processes and says the same tokens. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixture } from '../testing/fixtures.js';
import { launchServer } from './launch.js';
import type { TesseraServer } from './server.js';

async function completions(server: TesseraServer, prompts: string[]): Promise<string[]> {
  return Promise.all(
    prompts.map(async (prompt, i) => {
      const response = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'stories', prompt, max_tokens: 12 + i * 5, temperature: 0, ignore_eos: true }),
      });
      assert.equal(response.status, 200);
      return ((await response.json()) as { choices: { text: string }[] }).choices[0].text;
    }),
  );
}

test('concurrent requests on a tp 2 × pp 2 mesh equal one process, several sequences to a mesh step', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const prompts = ['Once upon a time', 'The little dog', 'Lily and Tom went to the park. They', 'One day'];
  const single = await launchServer({ model, backend: 'reference', port: 0, servedModelName: 'stories', core: { kvCacheMib: 4 } });
  const expected = await completions(single, prompts).finally(() => single.close());
  const scratch = mkdtempSync(join(tmpdir(), 'tessera-mesh-serve-'));
  const trace = join(scratch, 'mesh.json');
  try {
    const mesh = await launchServer({
      model,
      port: 0,
      servedModelName: 'stories',
      core: { kvCacheMib: 4 },
      mesh: { tp: 2, pp: 2, ep: 1, transport: 'unix', spawn: true, backend: 'reference', trace },
    });
    try {
      assert.deepEqual(await completions(mesh, prompts), expected);
    } finally {
      await mesh.close();
    }
    // Every rank ran steps that carried more than one sequence (the requests run side by side).
    const events = (JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name: string; pid: number; args?: { sequences?: number } }[] }).traceEvents;
    const batched = new Set(events.filter((event) => event.name === 'step' && (event.args?.sequences ?? 1) > 1).map((event) => event.pid));
    assert.equal(batched.size, 4, `ranks with batched steps: ${[...batched].join(', ')}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

interface Completion {
  text: string;
  cachedTokens: number;
}

/** Greedy completions of token-id prompts, one after another (so the first's blocks are cached before the second looks). */
async function inTurn(server: TesseraServer, prompts: number[][]): Promise<Completion[]> {
  const results: Completion[] = [];
  for (const prompt of prompts) {
    const response = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'stories', prompt, max_tokens: 10, temperature: 0, ignore_eos: true }),
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { choices: { text: string }[]; usage: { prompt_tokens_details: { cached_tokens: number } } };
    results.push({ text: body.choices[0].text, cachedTokens: body.usage.prompt_tokens_details.cached_tokens });
  }
  return results;
}

test('prefix caching on a tp 2 × pp 2 mesh: a shared prefix hits the cache on every rank, tokens equal one process', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const long = Array.from({ length: 40 }, (_, i) => 5 + ((i * 13) % 400));
  // The first 36 tokens shared (two full 16-token blocks), then another tail.
  const branched = [...long.slice(0, 36), 77, 78, 79, 80, 81, 82];
  const prompts = [long, branched];
  const single = await launchServer({ model, backend: 'reference', port: 0, servedModelName: 'stories', core: { kvCacheMib: 4 } });
  const expected = await inTurn(single, prompts).finally(() => single.close());
  const mesh = await launchServer({
    model,
    port: 0,
    servedModelName: 'stories',
    core: { kvCacheMib: 4 },
    mesh: { tp: 2, pp: 2, ep: 1, transport: 'unix', spawn: true, backend: 'reference' },
  });
  try {
    const results = await inTurn(mesh, prompts);
    assert.deepEqual(results, expected);
    assert.equal(results[1].cachedTokens, 32, 'the second prompt reuses two blocks');
    const metrics = await (await fetch(`${mesh.url}/metrics`)).text();
    const hits = Number(metrics.match(/^tessera_prefix_cache_hit_tokens (\S+)$/m)?.[1]);
    assert.equal(hits, 32, `prefix-cache hit tokens in /metrics: ${hits}`);
  } finally {
    await mesh.close();
  }
});
