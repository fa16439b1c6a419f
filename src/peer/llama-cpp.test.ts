import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufHeader } from '../format/gguf-reader.js';
import type { SynthArch, SynthDType } from '../synth/presets.js';
import { synthesize } from '../synth/synthesize.js';
import { tokenizerFromGguf } from '../tokenizer/gguf-tokenizer.js';
import { openLlamaCppPeer } from './llama-cpp.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-peer-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const TEXT = 'Once upon a time there was a little girl named Lily. She loved to play in the garden with her cat, and the sun was warm!';

const CASES: Array<{ preset: string; arch: SynthArch }> = [
  { preset: 'tiny', arch: 'llama' },
  { preset: 'tiny-llama3', arch: 'llama' },
  { preset: 'tiny', arch: 'qwen2' },
  { preset: 'tiny-wide-head', arch: 'qwen3' },
];

async function write(preset: string, arch: SynthArch, dtype: SynthDType): Promise<string> {
  const out = join(dir, `${preset}-${arch}-${dtype}.gguf`);
  await synthesize({ preset, arch, dtype, out, format: 'gguf', seed: 11 });
  return out;
}

for (const { preset, arch } of CASES) {
  test(`${preset} ${arch}: llama.cpp loads it, tokenizes like Tessera, and greedy agrees between F32 and Q8_0`, async () => {
    const f32Path = await write(preset, arch, 'f32');
    const q8Path = await write(preset, arch, 'q8_0');
    const ours = tokenizerFromGguf(readGgufHeader(f32Path).metadata);
    const f32 = await openLlamaCppPeer(f32Path);
    const q8 = await openLlamaCppPeer(q8Path);
    try {
      const ids = f32.tokenize(TEXT);
      assert.deepEqual(ours.encode(TEXT, { addBos: false }), ids);
      // Natural text splits into multi-character pieces, not bytes (whole words need a larger vocabulary than these 512-1024).
      assert.ok(ids.length < TEXT.length * 0.7, `${ids.length} tokens for ${TEXT.length} characters`);
      const prompt = ids.slice(0, 16);
      const fromF32 = await f32.greedy(prompt, 32);
      const fromQ8 = await q8.greedy(prompt, 32);
      assert.equal(fromF32.length, 32);
      assert.deepEqual(fromQ8, fromF32);
      // The planted structure keeps the winner far ahead: a clear top-1/top-2 margin at every step.
      const context = [...prompt];
      for (const token of fromF32.slice(0, 8)) {
        const [first, second] = await f32.nextTokenLogits(context, 2);
        assert.equal(first.token, token);
        assert.ok(first.logit - second.logit > 5, `margin ${first.logit - second.logit} at step ${context.length}`);
        context.push(token);
      }
    } finally {
      await f32.close();
      await q8.close();
    }
  });
}
