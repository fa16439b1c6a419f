/** The catalog's architecture numbers, checked against the parameter counts their publishers state. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { catalogModel, modelNames } from './model-catalog.js';
import { attentionFlopsPerPosition, kvElementsPerToken, parameterCounts } from './model-shape.js';

const PUBLISHED: [string, number, number][] = [
  // name, total parameters (billions), active per token (billions)
  ['tinyllama-1.1b', 1.1, 1.1],
  ['llama-2-7b', 6.74, 6.74],
  ['llama-2-70b', 68.98, 68.98],
  ['llama-3.1-8b', 8.03, 8.03],
  ['llama-3.1-70b', 70.55, 70.55],
  ['llama-3.1-405b', 405.85, 405.85],
  ['llama-3.3-70b', 70.55, 70.55],
  ['mixtral-8x7b', 46.7, 12.9],
  ['qwen3-30b-a3b', 30.5, 3.3],
  ['qwen3-235b-a22b', 235, 22],
  ['deepseek-v3', 671, 37],
];

test('every catalog model has the parameter counts its publisher states (within 2%)', () => {
  assert.deepEqual(new Set(modelNames()), new Set(PUBLISHED.map(([name]) => name)));
  for (const [name, total, active] of PUBLISHED) {
    const counts = parameterCounts(catalogModel(name));
    assert.ok(Math.abs(counts.total / 1e9 / total - 1) < 0.02, `${name} total ${(counts.total / 1e9).toFixed(2)}B`);
    assert.ok(Math.abs(counts.activePerToken / 1e9 / active - 1) < 0.03, `${name} active ${(counts.activePerToken / 1e9).toFixed(2)}B`);
  }
});

test('KV elements per token per layer: grouped-query heads, or MLA latent plus RoPE key', () => {
  assert.equal(kvElementsPerToken(catalogModel('llama-3.1-70b')), 2 * 8 * 128);
  assert.equal(kvElementsPerToken(catalogModel('llama-2-7b')), 2 * 32 * 128);
  assert.equal(kvElementsPerToken(catalogModel('deepseek-v3')), 512 + 64);
});

test('attention FLOPs per attended position: 4 × heads × head size', () => {
  assert.equal(attentionFlopsPerPosition(catalogModel('llama-3.1-8b')), 4 * 32 * 128);
  assert.equal(attentionFlopsPerPosition(catalogModel('deepseek-v3')), 2 * 128 * 576 + 2 * 128 * 512);
});
