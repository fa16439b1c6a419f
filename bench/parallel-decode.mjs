// Decode tokens/s of one model split four ways, side by side in one run
// (issue 4): one process with 1 thread, one process with 2 threads, tp=2
// (two processes, 1 thread each), pp=2 (two processes, 1 thread each), with
// the reporting rank's per-token compute vs communication wait. Every
// configuration must produce the same greedy tokens (checked).
//
//   node bench/parallel-decode.mjs --model /tmp/tinyllama-q8.gguf [--tokens 32] [--transport unix|tcp] [--rounds 2]
//
// Needs `npm run build` and the native addon (src/backend/native).
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { Engine } from '../dist/engine/engine.js';
import { createBackend } from '../dist/backend/native/select-backend.js';
import { openMeshEngine } from '../dist/cluster/mesh-engine.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    tokens: { type: 'string', default: '32' },
    transport: { type: 'string', default: 'unix' },
    rounds: { type: 'string', default: '2' },
    out: { type: 'string', default: 'bench/results' },
    label: { type: 'string', default: '' },
  },
});
const tokens = Number(values.tokens);
const prompt = [1, 450, 4996];

async function decode(engine) {
  const result = await engine.complete({ promptIds: prompt, maxTokens: tokens, ignoreEos: true });
  return { ids: result.ids, tokensPerSecond: result.timings.decodeTokensPerSecond, decodeMs: result.timings.decodeMs };
}

const configs = [
  { name: 'tp1 x 1 thread', open: async () => ({ engine: await Engine.open(values.model, { backend: createBackend('native', { threads: 1 }) }) }) },
  { name: 'tp1 x 2 threads', open: async () => ({ engine: await Engine.open(values.model, { backend: createBackend('native', { threads: 2 }) }) }) },
  { name: 'tp2 x 1 thread', open: () => openMeshEngine(values.model, { tp: 2, pp: 1, transport: values.transport, spawn: true, backend: 'native', threads: 1 }) },
  { name: 'pp2 x 1 thread', open: () => openMeshEngine(values.model, { tp: 1, pp: 2, transport: values.transport, spawn: true, backend: 'native', threads: 1 }) },
];

const loadBefore = loadavg();
const rows = [];
let reference;
for (const config of configs) {
  const { engine, coordinator } = await config.open();
  await decode(engine); // warm-up: first-touch of weights, JIT
  const runs = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    if (coordinator) coordinator.totals = { steps: 0, computeMs: 0, waitMs: 0 };
    const run = await decode(engine);
    reference ??= run.ids;
    if (JSON.stringify(run.ids) !== JSON.stringify(reference)) throw new Error(`${config.name} generated different tokens`);
    const perToken = coordinator ? { computeMs: coordinator.totals.computeMs / coordinator.totals.steps, waitMs: coordinator.totals.waitMs / coordinator.totals.steps } : undefined;
    runs.push({ tokensPerSecond: run.tokensPerSecond, perToken });
  }
  await coordinator?.close();
  const best = runs.reduce((a, b) => (b.tokensPerSecond > a.tokensPerSecond ? b : a));
  rows.push({ config: config.name, tokensPerSecond: best.tokensPerSecond, perTokenOnReportingRank: best.perToken, runs });
  console.log(`${config.name.padEnd(18)} ${best.tokensPerSecond.toFixed(2).padStart(8)} tok/s${best.perToken ? `  per token: compute ${best.perToken.computeMs.toFixed(1)} ms, waiting ${best.perToken.waitMs.toFixed(1)} ms` : ''}`);
}
const ratio = rows[2].tokensPerSecond / rows[1].tokensPerSecond;
console.log(`tp=2 (2 processes x 1 thread) / 1 process x 2 threads = ${ratio.toFixed(3)} (floor 0.95)`);
const date = new Date().toISOString();
const report = { benchmark: 'parallel-decode', model: values.model, promptTokens: prompt.length, tokens, transport: values.transport, label: values.label, date, machine: { cpu: cpus()[0]?.model, cores: cpus().length, loadBefore, loadAfter: loadavg() }, rows, tp2OverThreads2: ratio, sameTokens: true };
mkdirSync(values.out, { recursive: true });
const file = `${values.out}/parallel-decode-${values.label ? `${values.label}-` : ''}${date.replace(/[:.]/g, '-')}.json`;
writeFileSync(file, `${JSON.stringify(report, null, 1)}\n`);
console.log(`written to ${file}`);
