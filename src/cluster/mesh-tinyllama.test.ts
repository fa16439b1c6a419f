/**
 * Acceptance on a synthetic TinyLlama-1.1B-shape Q8_0 model (hidden 2048,
 * 32 heads, 4 KV heads, intermediate 5632, vocab 32000) cut to 2 layers:
 * forked worker processes give the logits and greedy tokens of one process
 * bit for bit. The reference backend is slow at this width, so prompts are
 * tiny, and the transports alternate (stories260K runs every shape on both).
 * The 233 MB file is cached in the temp folder between runs: the comparison
 * is between configurations of the same file, so a stale cache cannot make
 * it pass wrongly.
 */
import { test } from 'node:test';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize } from '../synth/synthesize.js';
import { checkMesh, expectedFromOneProcess } from './mesh-process.case.js';

const RUNS = [
  { shape: { tp: 2, pp: 1 }, transport: 'shm' },
  { shape: { tp: 2, pp: 1 }, transport: 'tcp' },
  { shape: { tp: 4, pp: 1 }, transport: 'unix' },
  { shape: { tp: 1, pp: 2 }, transport: 'shm' },
  { shape: { tp: 2, pp: 2 }, transport: 'tcp' },
] as const;

async function tinyLlamaShape(): Promise<string> {
  const folder = join(tmpdir(), 'tessera-test-models');
  const path = join(folder, 'tinyllama-1.1b-q8_0-2layers-seed1.gguf');
  if (existsSync(path)) return path;
  mkdirSync(folder, { recursive: true });
  const partial = `${path}.${process.pid}.partial`;
  await synthesize({ preset: 'tinyllama-1.1b', arch: 'llama', dtype: 'q8_0', out: partial, format: 'gguf', seed: 1, layers: 2 });
  renameSync(partial, path);
  return path;
}

test('TinyLlama-shape Q8_0 on worker processes: identical logits and greedy tokens for every (tp, pp)', async () => {
  const path = await tinyLlamaShape();
  const prompt = [1, 450];
  const expected = await expectedFromOneProcess(path, prompt, 2);
  // Bit-identical logits at the prefill and the decode step make the greedy tokens equal too;
  // the engine's own greedy loop over a mesh is exercised on stories260K.
  for (const { shape, transport } of RUNS) await checkMesh(path, shape, transport, prompt, expected, false);
});
