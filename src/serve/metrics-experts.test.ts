/** An MoE model served: /metrics shows the tokens routed to each expert and each layer's imbalance. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { synthesize } from '../synth/synthesize.js';
import { launchServer } from './launch.js';

test('expert load of an MoE model reaches /metrics', async () => {
  const modelPath = join(mkdtempSync(join(tmpdir(), 'tessera-moe-metrics-')), 'tiny-mixtral.gguf');
  await synthesize({ preset: 'tiny-mixtral', arch: 'mixtral', dtype: 'f32', out: modelPath, format: 'gguf', seed: 4 });
  const server = await launchServer({ model: modelPath, backend: 'reference', port: 0, core: { kvCacheMib: 8, maxNumSeqs: 8, maxBatchTokens: 64 } });
  try {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const model = (await client.models.list()).data[0].id;
    const completion = await client.completions.create({ model, prompt: 'the robot reads a book', max_tokens: 6, temperature: 0 });
    const generated = completion.usage?.completion_tokens ?? 0;
    const prompt = completion.usage?.prompt_tokens ?? 0;
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const routed = [...metrics.matchAll(/^tessera_expert_routed_tokens\{layer="0",expert="\d+"\} (\d+)$/gm)].map((m) => Number(m[1]));
    assert.ok(routed.length >= 2, metrics);
    // Every token computed in layer 0 went to top-k experts: the counts add up to tokens × k.
    const total = routed.reduce((a, b) => a + b, 0);
    assert.ok(total > 0 && total % (prompt + generated - 1) === 0, `routed ${total} for ${prompt + generated - 1} tokens`);
    assert.match(metrics, /^tessera_expert_load_imbalance\{layer="0"\} [\d.]+$/m);
  } finally {
    await server.close();
  }
});
