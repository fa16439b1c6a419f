// Pipeline micro-batching (issue 4): with pp=2, decode S sequences one step
// at a time (each sequence's step awaited before the next is sent), all S
// sequences' steps in flight at once (stage 0 works on one sequence while
// stage 1 works on another), and as serving runs them (cluster/mesh-batches.ts):
// one micro-batch of several sequences per stage, all in flight. Same greedy
// tokens every way (checked).
//
//   node bench/parallel-microbatch.mjs --model /tmp/tinyllama-q8.gguf [--sequences 4] [--tokens 16] [--pp 2]
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { openMeshEngine } from '../dist/cluster/mesh-engine.js';
import { stepMicroBatches } from '../dist/cluster/mesh-batches.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, sequences: { type: 'string', default: '4' }, tokens: { type: 'string', default: '16' }, pp: { type: 'string', default: '2' }, out: { type: 'string', default: 'bench/results' } } });
const S = Number(values.sequences);
const tokens = Number(values.tokens);
const argmax = (logits) => logits.reduce((best, v, i, a) => (v > a[best] ? i : best), 0);

async function decodeAll(coordinator, pool, mode) {
  const prompts = Array.from({ length: S }, (_, s) => [1, 450 + s, 4996]);
  // Each sequence's blocks in the engine's pool (the one the ranks mirror), freed at the end.
  const sequences = prompts.map(() => pool.allocate(3 + tokens + 1));
  const request = (s, ids, positions, rows) => ({ blockTable: sequences[s].blockTable, ids: Int32Array.from(ids), positions: Int32Array.from(positions), rows });
  const step = (s, ids, positions, rows) => coordinator.step(pool, request(s, ids, positions, rows));
  let next = await Promise.all(prompts.map((p, s) => step(s, p, [0, 1, 2], 'last').then(argmax)));
  const generated = prompts.map(() => []);
  const started = performance.now();
  for (let t = 0; t < tokens; t++) {
    const run = (s) => step(s, [next[s]], [3 + t], 'last').then(argmax);
    next.forEach((id, s) => generated[s].push(id));
    if (mode === 'all') next = await Promise.all(next.map((_, s) => run(s)));
    else if (mode === 'batched') next = await microBatches(coordinator, pool, next.map((id, s) => request(s, [id], [3 + t], 'last')));
    else {
      const out = [];
      for (let s = 0; s < S; s++) out.push(await run(s));
      next = out;
    }
  }
  const tokensPerSecond = (S * tokens) / ((performance.now() - started) / 1000);
  for (const sequence of sequences) pool.release(sequence);
  return { tokensPerSecond, generated };
}

/** One step of several sequences per stage, all in flight (as serving runs them) → each sequence's argmax. */
async function microBatches(coordinator, pool, requests) {
  const logits = await stepMicroBatches(coordinator, pool, requests);
  const vocabSize = logits.length / requests.length;
  return requests.map((_, row) => argmax(logits.subarray(row * vocabSize, (row + 1) * vocabSize)));
}

const loadBefore = loadavg();
const { engine, coordinator } = await openMeshEngine(values.model, { tp: 1, pp: Number(values.pp), transport: 'unix', spawn: true, backend: 'native', threads: 1 });
await decodeAll(coordinator, engine.cache, 'all'); // warm-up
const one = await decodeAll(coordinator, engine.cache, 'one');
const many = await decodeAll(coordinator, engine.cache, 'all');
const batched = await decodeAll(coordinator, engine.cache, 'batched');
await coordinator.close();
if (JSON.stringify(one.generated) !== JSON.stringify(many.generated) || JSON.stringify(one.generated) !== JSON.stringify(batched.generated)) {
  throw new Error('micro-batching changed the tokens');
}
console.log(
  `pp=${values.pp}, ${S} sequences: one step in flight ${one.tokensPerSecond.toFixed(2)} tok/s, all in flight ${many.tokensPerSecond.toFixed(2)} tok/s (x${(many.tokensPerSecond / one.tokensPerSecond).toFixed(2)}), ` +
    `batched micro-batches ${batched.tokensPerSecond.toFixed(2)} tok/s (x${(batched.tokensPerSecond / one.tokensPerSecond).toFixed(2)})`,
);
const date = new Date().toISOString();
mkdirSync(values.out, { recursive: true });
const file = `${values.out}/parallel-microbatch-${date.replace(/[:.]/g, '-')}.json`;
writeFileSync(file, `${JSON.stringify({ benchmark: 'parallel-microbatch', model: values.model, pp: Number(values.pp), sequences: S, tokens, date, machine: { cpu: cpus()[0]?.model, cores: cpus().length, loadBefore, loadAfter: loadavg() }, oneInFlightTokensPerSecond: one.tokensPerSecond, allInFlightTokensPerSecond: many.tokensPerSecond, batchedMicroBatchesTokensPerSecond: batched.tokensPerSecond, sameTokens: true }, null, 1)}\n`);
console.log(`written to ${file}`);
