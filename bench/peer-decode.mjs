// Tessera's native backend and llama.cpp (node-llama-cpp) on the same GGUF
// file and thread count, alternated in one run so the machine's noise hits
// both; prints the ratios. Not a test; `tessera bench` is the full benchmark.
//   node bench/peer-decode.mjs --model FILE [--threads 2] [--prompt 128] [--tokens 32] [--rounds 3] [--no-flash-attention]
import { parseArgs } from 'node:util';
import { Engine } from '../dist/engine/engine.js';
import { NativeBackend } from '../dist/backend/native/native-backend.js';

const { values: options } = parseArgs({
  options: {
    model: { type: 'string' },
    threads: { type: 'string', default: '2' },
    prompt: { type: 'string', default: '128' },
    tokens: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    'no-flash-attention': { type: 'boolean', default: false },
  },
});
if (!options.model) throw new Error('--model FILE is required');
const threads = Number(options.threads);
const promptIds = Array.from({ length: Number(options.prompt) }, (_, i) => 100 + ((i * 7919) % 20000));
const tokens = Number(options.tokens);

const engine = await Engine.open(options.model, { backend: new NativeBackend({ threads }) });
async function tessera() {
  const { timings } = await engine.complete({ promptIds, maxTokens: tokens, ignoreEos: true });
  return { prefill: timings.prefillTokensPerSecond, decode: timings.decodeTokensPerSecond };
}

const { getLlama } = await import('node-llama-cpp');
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const model = await llama.loadModel({ modelPath: options.model });
async function llamaCpp() {
  const context = await model.createContext({
    contextSize: 1024, threads, sequences: 1, batchSize: 512, flashAttention: !options['no-flash-attention'],
  });
  const sequence = context.getSequence();
  const start = performance.now();
  let first = 0;
  let count = 0;
  for await (const token of sequence.evaluate(promptIds, { temperature: 0 })) {
    void token;
    if (count === 0) first = performance.now();
    if (++count >= tokens) break;
  }
  const end = performance.now();
  await context.dispose();
  return { prefill: (promptIds.length / (first - start)) * 1000, decode: ((count - 1) / (end - first)) * 1000 };
}

const best = { tessera: { prefill: 0, decode: 0 }, llama: { prefill: 0, decode: 0 } };
for (let round = 0; round < Number(options.rounds); round++) {
  for (const [name, run] of [['tessera', tessera], ['llama', llamaCpp]]) {
    const r = await run();
    best[name].prefill = Math.max(best[name].prefill, r.prefill);
    best[name].decode = Math.max(best[name].decode, r.decode);
    console.log(`round ${round} ${name.padEnd(7)} prefill ${r.prefill.toFixed(1)} tok/s  decode ${r.decode.toFixed(2)} tok/s`);
  }
}
console.log(JSON.stringify({
  model: options.model, threads, promptTokens: promptIds.length, tokens, best,
  ratio: { prefill: best.tessera.prefill / best.llama.prefill, decode: best.tessera.decode / best.llama.decode },
}));
await model.dispose();
await llama.dispose();
