/**
 * Q4_K_M-style files (most matrices Q4_K, ffn_down Q6_K), as people download
 * them, against llama.cpp on the same file: greedy tokens and raw logits.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DType } from '../core/dtype.js';
import { dequantize, quantize } from '../core/quant.js';
import { GgufStore } from '../format/gguf-reader.js';
import { GgufValueType } from '../format/gguf-types.js';
import { metadataEntries, writeGguf } from '../format/gguf-writer.js';
import { matrixShape } from '../format/tensor-store.js';
import { openLlamaCppPeer } from '../peer/llama-cpp.js';
import { synthesize } from '../synth/synthesize.js';
import { Engine } from './engine.js';

const scratch = mkdtempSync(join(tmpdir(), 'tessera-kquant-'));

/** The type llama.cpp's Q4_K_M recipe gives a tensor (simplified: ffn_down and output Q6_K, other matrices Q4_K). */
function kQuantType(name: string, shape: readonly number[]): DType {
  if (shape.length !== 2 || shape[1] % 256 !== 0) return 'f32';
  return name.includes('ffn_down') || name === 'output.weight' ? 'q6_k' : 'q4_k';
}

function requantize(source: string, target: string): void {
  const store = new GgufStore(source);
  const metadata = metadataEntries(store.header).filter((entry) => entry.key !== 'general.file_type');
  metadata.push({ key: 'general.file_type', type: GgufValueType.UINT32, value: 15 }); // MOSTLY_Q4_K_M
  writeGguf(target, {
    metadata,
    tensors: store.list().map((info) => {
      const dtype = kQuantType(info.name, info.shape);
      return {
        name: info.name,
        dtype,
        shape: [...info.shape],
        data: () => {
          const { rows, cols } = matrixShape(info.shape);
          const values = dequantize(info.dtype, store.readRows(info.name, 0, rows), rows * cols);
          return quantize(dtype, values);
        },
      };
    }),
  });
  store.close();
}

test('a Q4_K/Q6_K file generates like llama.cpp', async () => {
  const f32 = join(scratch, 'small-f32.gguf');
  const kQuant = join(scratch, 'small-q4_k_m.gguf');
  await synthesize({ preset: 'small', arch: 'llama', dtype: 'f32', out: f32, format: 'gguf', seed: 3, layers: 2 });
  requantize(f32, kQuant);
  const engine = await Engine.open(kQuant);
  const types = new Set(engine.files.store.list().map((info) => info.dtype));
  assert.ok(types.has('q4_k') && types.has('q6_k'), [...types].join(','));
  const promptIds = engine.tokenizer.encode('the little robot read a book by the sea', { addBos: true }).slice(0, 12);
  const ours = (await engine.complete({ promptIds, maxTokens: 24, ignoreEos: true })).ids;
  const peer = await openLlamaCppPeer(kQuant, { threads: 1, contextSize: 128 });
  try {
    assert.deepEqual(ours.slice(0, 24), await peer.greedy(promptIds, 24));
    const sequence = [...promptIds, ...ours];
    for (const length of [promptIds.length, sequence.length]) {
      const top = await peer.nextTokenLogits(sequence.slice(0, length), 20);
      const row = (await engine.logits(sequence.slice(0, length))).subarray((length - 1) * engine.config.vocabSize);
      for (const { token, logit } of top) {
        // llama.cpp quantizes activations to 8 bits for K-quant dot products.
        assert.ok(Math.abs(row[token] - logit) <= 0.5, `length ${length} token ${token}: ours ${row[token]} vs llama.cpp ${logit}`);
      }
    }
  } finally {
    await peer.close();
  }
});
