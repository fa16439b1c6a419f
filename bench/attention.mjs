// Micro-benchmark of a decode step's attention part on the native backend
// (not a test): RoPE of queries and keys, KV writes and attention for every
// layer, at TinyLlama-1.1B's shapes (32 query heads, 4 KV heads of 64, blocks
// of 16), for `--seqs` sequences with `--context` cached positions each. Runs
// it the old way (five calls per sequence and layer) and batched (one rope
// call each for queries and keys, one writeKvBatch, one attentionBatch per
// layer), alternating, and prints the medians and the per-op split.
// `--kv-dtype f16` keeps the cache in IEEE half; `both` alternates f32 and f16
// pools in one run, so their ratio is measured under the same machine load.
//   node bench/attention.mjs [--threads N] [--seqs 16] [--context 36] [--layers 22] [--steps 40] [--kv-dtype f32|f16|both]
import { parseArgs } from 'node:util';
import { NativeBackend } from '../dist/backend/native/native-backend.js';
import { f32ArrayToF16 } from '../dist/core/half.js';

const { values: options } = parseArgs({
  options: {
    threads: { type: 'string', default: '0' },
    seqs: { type: 'string', default: '16' },
    context: { type: 'string', default: '36' },
    layers: { type: 'string', default: '22' },
    steps: { type: 'string', default: '40' },
    'kv-dtype': { type: 'string', default: 'f32' },
  },
});
const backend = new NativeBackend({ threads: Number(options.threads) });
const [numHeads, numKvHeads, headDim, blockSize] = [32, 4, 64, 16];
const [seqs, context, layers, steps] = ['seqs', 'context', 'layers', 'steps'].map((name) => Number(options[name]));

let seed = 12345;
/** [n] uniform values in [-0.5, 0.5). */
function randomFloats(n) {
  return Float32Array.from({ length: n }, () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296 - 0.5;
  });
}

// Each sequence's blocks interleave with the others' in the pools, as a busy cache's would.
const blocksPerSequence = Math.ceil((context + 1) / blockSize);
const dtypes = options['kv-dtype'] === 'both' ? ['f32', 'f16'] : [options['kv-dtype']];
if (!dtypes.every((dtype) => dtype === 'f32' || dtype === 'f16')) throw new Error('--kv-dtype must be f32, f16 or both');
const pool = (dtype) => {
  const values = randomFloats(seqs * blocksPerSequence * blockSize * numKvHeads * headDim);
  return { dtype, data: dtype === 'f16' ? f32ArrayToF16(values) : values, blockSize, numKvHeads, headDim };
};
const poolsOf = Object.fromEntries(dtypes.map((dtype) => [dtype, Array.from({ length: layers }, () => ({ keyCache: pool(dtype), valueCache: pool(dtype) }))]));
const segments = Array.from({ length: seqs }, (_, i) => ({
  start: i,
  positions: Int32Array.of(context),
  blockTable: Int32Array.from({ length: blocksPerSequence }, (_, b) => b * seqs + i),
}));
const positions = Int32Array.from(segments, (segment) => segment.positions[0]);
const inverseFrequencies = Float32Array.from({ length: headDim / 2 }, (_, i) => 10000 ** ((-2 * i) / headDim));
const [queryWidth, kvWidth, scale] = [numHeads * headDim, numKvHeads * headDim, 1 / Math.sqrt(headDim)];
/** [seqs, numHeads, headDim], [seqs, numKvHeads, headDim] ×2 */
const [query, keys, values] = [randomFloats(seqs * queryWidth), randomFloats(seqs * kvWidth), randomFloats(seqs * kvWidth)];
const rope = (x, at, heads) => backend.rope({ x, positions: at, numHeads: heads, headDim, ropeDims: headDim, style: 'adjacent', inverseFrequencies });
const times = {};
const timed = (name, f) => {
  const start = performance.now();
  const result = f();
  times[name] = (times[name] ?? 0) + performance.now() - start;
  return result;
};

function perSequence(pools) {
  for (const { keyCache, valueCache } of pools) {
    const attended = new Float32Array(seqs * queryWidth);
    for (const { start, positions: at, blockTable } of segments) {
      const [q, k] = [query.subarray(start * queryWidth, (start + 1) * queryWidth), keys.subarray(start * kvWidth, (start + 1) * kvWidth)];
      rope(q, at, numHeads);
      rope(k, at, numKvHeads);
      backend.writeKv(keyCache, blockTable, at, k);
      backend.writeKv(valueCache, blockTable, at, values.subarray(start * kvWidth, (start + 1) * kvWidth));
      attended.set(backend.attention({ query: q, keyCache, valueCache, blockTable, positions: at, numHeads, numKvHeads, headDim, scale }), start * queryWidth);
    }
  }
}

function batched(pools) {
  const dtype = pools[0].keyCache.dtype;
  for (const { keyCache, valueCache } of pools) {
    timed(`${dtype} rope`, () => rope(query, positions, numHeads));
    timed(`${dtype} rope`, () => rope(keys, positions, numKvHeads));
    timed(`${dtype} writeKvBatch`, () => backend.writeKvBatch({ keyCache, valueCache, keys, values, segments }));
    timed(`${dtype} attentionBatch`, () => backend.attentionBatch({ query, keyCache, valueCache, segments, numHeads, numKvHeads, headDim, scale }));
  }
}

const median = (samples) => [...samples].sort((a, b) => a - b)[samples.length >> 1];
const samples = Object.fromEntries(dtypes.flatMap((dtype) => [[`perSequence ${dtype}`, []], [`batched ${dtype}`, []]]));
for (let step = 0; step < steps + 5; step++) {
  for (const dtype of dtypes) {
    for (const [name, run] of [['perSequence', perSequence], ['batched', batched]]) {
      const start = performance.now();
      run(poolsOf[dtype]);
      if (step >= 5) samples[`${name} ${dtype}`].push(performance.now() - start);
    }
  }
}
const split = Object.fromEntries(Object.entries(times).map(([name, ms]) => [name, +(ms / (steps + 5)).toFixed(2)]));
for (const dtype of dtypes) {
  console.log(
    `${dtype} KV: ${seqs} sequences × ${context} positions, ${layers} layers, ${backend.isa} × ${backend.threads} threads: ` +
      `per sequence ${median(samples[`perSequence ${dtype}`]).toFixed(2)} ms/step, batched ${median(samples[`batched ${dtype}`]).toFixed(2)} ms/step ` +
      `(medians of ${steps})`,
  );
}
if (dtypes.length === 2) {
  const ratio = median(samples['batched f16']) / median(samples['batched f32']);
  console.log(`batched f16 / f32: ${ratio.toFixed(3)}`);
}
console.log(`batched split (means, ms/step) ${JSON.stringify(split)}`);
