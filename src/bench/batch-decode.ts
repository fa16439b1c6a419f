/**
 * Decode throughput of B sequences stepping together (what a server's engine
 * core runs at concurrency B): B prompts prefilled, then timed steps of one
 * token for each sequence, all through Transformer.forwardBatch. Tokens are
 * each sequence's greedy choice, so the work is that of real decoding.
 */
import { KvCache } from '../engine/kv-cache.js';
import type { Engine } from '../engine/engine.js';
import type { Batch, SequenceKv } from '../model/batch.js';

/** Generated tokens per second over `steps` steps of `batchSize` sequences after `promptLength`-token prompts. */
export async function measureBatchDecode(engine: Engine, batchSize: number, promptLength: number, steps: number): Promise<number> {
  const { config, transformer } = engine;
  const cache = KvCache.forTokens(config, batchSize * (promptLength + steps + 16), undefined, engine.kvCacheDtype);
  const sequences: SequenceKv[] = Array.from({ length: batchSize }, () => cache.allocate(promptLength + steps + 1));
  const vocab = config.vocabSize;
  const positions = (start: number, count: number) => Int32Array.from({ length: count }, (_, i) => start + i);
  const prompt = (s: number) => Int32Array.from({ length: promptLength }, (_, i) => 100 + ((i * 7919 + s * 104729) % Math.max(1, vocab - 200)));
  const prefill: Batch = {
    ids: Int32Array.from(sequences.flatMap((_, s) => [...prompt(s)])),
    segments: sequences.map((kv, s) => ({ kv, start: s * promptLength, positions: positions(0, promptLength), logits: 'last' as const })),
  };
  let logits = await transformer.forwardBatch(prefill);
  const step = async (position: number): Promise<void> => {
    const ids = Int32Array.from(sequences, (_, s) => argmax(logits.subarray(s * vocab, (s + 1) * vocab)));
    logits = await transformer.forwardBatch({
      ids,
      segments: sequences.map((kv, s) => ({ kv, start: s, positions: positions(position, 1), logits: 'last' as const })),
    });
  };
  await step(promptLength); // warm-up: pipelines and buffers of this batch size
  const started = performance.now();
  for (let i = 1; i < steps; i++) await step(promptLength + i);
  return ((steps - 1) * batchSize) / ((performance.now() - started) / 1000);
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}
