/**
 * The comparison with llama.cpp (through node-llama-cpp) that the dense and
 * MoE conformance tests make on a GGUF file: greedy tokens after a prompt,
 * then the raw logits of llama.cpp's top tokens at several prefix lengths.
 */
import assert from 'node:assert/strict';
import type { Engine } from '../engine/engine.js';
import { openLlamaCppPeer, type LlamaCppPeer } from '../peer/llama-cpp.js';
import type { SynthDType } from '../synth/presets.js';

const PROMPT_TEXT = 'Once upon a time there was a little robot who liked to read old books by the sea';

// llama.cpp rounds activations to f16 for F16 weights and to 8 bits for the quantized types.
const LOGIT_TOLERANCE: Record<SynthDType, number> = { f32: 0.02, f16: 0.05, q8_0: 0.35, q4_0: 0.5, q4_k_m: 0.5 };

/** The first `length` tokens of a fixed English text, BOS first where the model has one. */
export function conformancePrompt(engine: Engine, length: number): number[] {
  const ids = engine.tokenizer.encode(PROMPT_TEXT, { addBos: true });
  assert.ok(ids.length >= length, `prompt has only ${ids.length} tokens`);
  return ids.slice(0, length);
}

/** Our greedy tokens and logits against llama.cpp's on the same file, with the tolerance of its weight type. */
export async function assertMatchesLlamaCpp(engine: Engine, path: string, dtype: SynthDType, promptIds: number[], generated: number): Promise<void> {
  const ours = (await engine.complete({ promptIds, maxTokens: generated, ignoreEos: true })).ids;
  const peer = await openLlamaCppPeer(path, { threads: 1, contextSize: 128 });
  try {
    const theirs = await peer.greedy(promptIds, generated);
    assert.deepEqual(ours.slice(0, theirs.length), theirs);
    assert.ok(theirs.length >= generated / 2, `llama.cpp stopped after ${theirs.length} tokens`);
    // Greedy agreement alone is weak evidence (synth plants wide logit margins so that
    // llama.cpp's 8-bit activations cannot flip tokens), so the raw logits of llama.cpp's
    // top tokens must agree too, at several prompt lengths and deep into the generation.
    const sequence = [...promptIds, ...ours];
    for (const length of [4, 11, promptIds.length, sequence.length]) {
      await assertSameTopLogits(engine, peer, sequence.slice(0, length), LOGIT_TOLERANCE[dtype]);
    }
  } finally {
    await peer.close();
  }
}

async function assertSameTopLogits(engine: Engine, peer: LlamaCppPeer, prefix: number[], tolerance: number): Promise<void> {
  const length = prefix.length;
  const top = await peer.nextTokenLogits(prefix, 20);
  const row = (await engine.logits(prefix)).subarray((length - 1) * engine.config.vocabSize);
  for (const { token, logit } of top) {
    assert.ok(Math.abs(row[token] - logit) <= tolerance, `length ${length} token ${token}: ours ${row[token]} vs llama.cpp ${logit}`);
  }
  assert.equal(row.indexOf(Math.max(...row)), top[0].token);
}
