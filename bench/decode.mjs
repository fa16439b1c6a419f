// End-to-end prefill and decode speed of one model on one backend (not a
// test; the full side-by-side with llama.cpp is `tessera bench`).
//   node bench/decode.mjs --model FILE [--backend native|reference] [--threads N] [--prompt 128] [--tokens 32]
import { parseArgs } from 'node:util';
import { Engine } from '../dist/engine/engine.js';
import { createBackend } from '../dist/backend/native/select-backend.js';

const { values: options } = parseArgs({
  options: {
    model: { type: 'string' },
    backend: { type: 'string', default: 'native' },
    threads: { type: 'string', default: '0' },
    isa: { type: 'string', default: 'auto' },
    'float-activations': { type: 'boolean', default: false },
    prompt: { type: 'string', default: '128' },
    tokens: { type: 'string', default: '32' },
  },
});
if (!options.model) throw new Error('--model FILE is required');

const backend = createBackend(options.backend, {
  threads: Number(options.threads),
  isa: options.isa,
  floatActivations: options['float-activations'],
});
const loadStart = performance.now();
const engine = await Engine.open(options.model, { backend });
const loadMs = performance.now() - loadStart;
const promptIds = Array.from({ length: Number(options.prompt) }, (_, i) => 100 + ((i * 7919) % 20000));
const result = await engine.complete({ promptIds, maxTokens: Number(options.tokens), ignoreEos: true });
const t = result.timings;
console.log(
  JSON.stringify({
    model: options.model,
    backend: backend.name,
    isa: backend.isa,
    threads: backend.threads,
    loadMs: Math.round(loadMs),
    promptTokens: t.promptTokens,
    prefillTokensPerSecond: Number(t.prefillTokensPerSecond.toFixed(2)),
    generatedTokens: t.generatedTokens,
    decodeTokensPerSecond: Number(t.decodeTokensPerSecond.toFixed(2)),
  }),
);
