// MoE benchmark (not a test): prefill and decode tokens/s of a synthetic
// Mixtral-shape GGUF in Tessera (native backend) and llama.cpp
// (node-llama-cpp) on the same file and thread count, side by side in one
// run; then expert parallelism with two processes (ep=2, Unix sockets)
// against one process (ep=1) on the same backend. Ratios matter more than
// absolute figures on a shared machine; the load average goes in the JSON.
//   npm run build && node bench/moe.mjs [--preset small-mixtral] [--dtype q8_0] [--threads 1] [--prompt 64] [--tokens 32] [--runs 3]
import { fork, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NativeBackend } from '../dist/backend/native/native-backend.js';
import { Engine } from '../dist/engine/engine.js';
import { KvCache } from '../dist/engine/kv-cache.js';
import { openModelFiles } from '../dist/engine/model-files.js';
import { ExpertLoad } from '../dist/model/moe-expert-load.js';
import { createExpertParallelFeedForwards } from '../dist/model/moe-expert-parallel.js';
import { placeExperts } from '../dist/model/moe-placement.js';
import { SINGLE_RANK } from '../dist/model/tensor-parallel.js';
import { loadTransformerWeights } from '../dist/model/transformer-weights.js';
import { Transformer } from '../dist/model/transformer.js';
import { Communicator } from '../dist/parallel/collectives.js';
import { MeshListener, connectMesh } from '../dist/parallel/socket-transport.js';
import { ExpertGroup } from '../dist/parallel/expert-group.js';
import { synthesize } from '../dist/synth/synthesize.js';

const { values: options } = parseArgs({
  options: {
    preset: { type: 'string', default: 'small-mixtral' },
    dtype: { type: 'string', default: 'q8_0' },
    threads: { type: 'string', default: '1' },
    prompt: { type: 'string', default: '64' },
    tokens: { type: 'string', default: '32' },
    runs: { type: 'string', default: '3' },
    worker: { type: 'string' },
    model: { type: 'string' },
  },
});
const threads = Number(options.threads);
const promptLength = Number(options.prompt);
const tokens = Number(options.tokens);

/** Deterministic prompt ids inside the vocabulary. */
function promptIds(vocabSize) {
  return Array.from({ length: promptLength }, (_, i) => 3 + ((i * 7919) % (vocabSize - 3)));
}

/** One rank of an expert-parallel mesh: prefill + greedy decode, in lockstep with the other ranks. */
async function runExpertParallel(path, rank, size, transport) {
  const files = openModelFiles(path);
  const config = files.config;
  const placement = placeExperts(config.moe.numExperts, size);
  const backend = new NativeBackend({ threads });
  const weights = loadTransformerWeights(files.store, config, backend, undefined, (expert) => placement.ownerOf[expert] === rank);
  files.store.close();
  const communicator = new Communicator(transport);
  const group = new ExpertGroup(communicator);
  const load = new ExpertLoad(config.numLayers);
  const transformer = new Transformer(config, weights, backend, SINGLE_RANK, createExpertParallelFeedForwards(weights, backend, config, placement, group, load));
  const ids = promptIds(config.vocabSize);
  const sequence = KvCache.forTokens(config, ids.length + tokens).allocate(ids.length + tokens);
  // Both ranks loaded: start the clocks together.
  await communicator.allGather(new Uint8Array(1));
  const prefillStart = performance.now();
  let logits = await transformer.forward(Int32Array.from(ids), Int32Array.from(ids.keys()), sequence, 'last');
  const prefillMs = performance.now() - prefillStart;
  const generated = [];
  const decodeStart = performance.now();
  for (let step = 0; step < tokens; step++) {
    const id = logits.indexOf(Math.max(...logits));
    generated.push(id);
    if (step === tokens - 1) break;
    logits = await transformer.forward(Int32Array.of(id), Int32Array.of(ids.length + step), sequence, 'last');
  }
  const decodeMs = performance.now() - decodeStart;
  return { prefillTokensPerSecond: (ids.length / prefillMs) * 1000, decodeTokensPerSecond: ((tokens - 1) / decodeMs) * 1000, ids: generated, expertTokens: load.snapshot().tokens };
}

if (options.worker !== undefined) {
  // Child: rank 1 of a 2-rank mesh. Its listener address goes to the parent, rank 0's comes back.
  const listener = await MeshListener.open('unix');
  process.send({ address: listener.address });
  const rankZero = await new Promise((resolve) => process.once('message', resolve));
  const transport = await connectMesh(1, [rankZero.address, listener.address], listener, rankZero.token);
  const result = await runExpertParallel(options.model, 1, 2, transport);
  process.send({ result });
  await transport.close();
  process.exit(0);
}

async function twoProcessExpertParallel(path) {
  const token = `bench-${process.pid}`;
  const child = fork(fileURLToPath(import.meta.url), ['--worker', '1', '--model', path, '--threads', String(threads), '--prompt', String(promptLength), '--tokens', String(tokens)]);
  const childAddress = await new Promise((resolve) => child.once('message', resolve));
  const listener = await MeshListener.open('unix');
  child.send({ address: listener.address, token });
  const transport = await connectMesh(0, [listener.address, childAddress.address], listener, token);
  const childResult = new Promise((resolve) => child.on('message', (message) => message.result && resolve(message.result)));
  const result = await runExpertParallel(path, 0, 2, transport);
  const other = await childResult;
  await transport.close();
  return { ...result, sameIdsOnBothRanks: JSON.stringify(other.ids) === JSON.stringify(result.ids), rank1ExpertTokens: other.expertTokens };
}

async function tessera(path) {
  const engine = await Engine.open(path, { backend: new NativeBackend({ threads }) });
  const result = await engine.complete({ promptIds: promptIds(engine.config.vocabSize), maxTokens: tokens, ignoreEos: true });
  return { prefillTokensPerSecond: result.timings.prefillTokensPerSecond, decodeTokensPerSecond: result.timings.decodeTokensPerSecond, ids: result.ids };
}

/** node-llama-cpp directly (the peer opens a fresh context per call, which would count context set-up as prefill). */
async function llamaCpp(path, vocabSize) {
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  const model = await llama.loadModel({ modelPath: path });
  const context = await model.createContext({ contextSize: promptLength + tokens + 16, threads, sequences: 1 });
  try {
    const ids = promptIds(vocabSize);
    const generated = [];
    const start = performance.now();
    let firstAt = 0;
    for await (const token of context.getSequence().evaluate(ids, { temperature: 0 })) {
      if (generated.length === 0) firstAt = performance.now();
      generated.push(token);
      if (generated.length >= tokens || model.isEogToken(token)) break;
    }
    const end = performance.now();
    return { prefillTokensPerSecond: (ids.length / (firstAt - start)) * 1000, decodeTokensPerSecond: ((generated.length - 1) / (end - firstAt)) * 1000, ids: generated };
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
}

/** `tessera run --ep 2` as a user runs it: two forked ranks, attention split by heads (tp = ep), experts spread. */
function cliMesh(path, vocabSize) {
  const cli = fileURLToPath(new URL('../bin/tessera.js', import.meta.url));
  // The CLI stops at EOS (it has no ignore-EOS flag); the ids are compared as a prefix.
  const args = ['run', '--model', path, '--prompt-ids', promptIds(vocabSize).join(','), '--max-tokens', String(tokens), '--json',
    '--ep', '2', '--transport', 'unix', '--rank-backend', 'native', '--rank-threads', String(threads)];
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  const output = JSON.parse(result.stdout);
  return { prefillTokensPerSecond: output.timings.prefillTokensPerSecond, decodeTokensPerSecond: output.timings.decodeTokensPerSecond, ids: output.ids };
}

const best = (runs, key) => Math.max(...runs.map((run) => run[key]));
const scratch = mkdtempSync(join(os.tmpdir(), 'tessera-bench-moe-'));
const path = join(scratch, `${options.preset}-${options.dtype}.gguf`);
await synthesize({ preset: options.preset, arch: 'mixtral', dtype: options.dtype, out: path, format: 'gguf', seed: 1 });
const vocabSize = openModelFiles(path).config.vocabSize;
const loadBefore = os.loadavg();
const runs = { tessera: [], llamaCpp: [], ep2: [], cliEp2: [] };
for (let run = 0; run < Number(options.runs); run++) {
  runs.tessera.push(await tessera(path));
  runs.llamaCpp.push(await llamaCpp(path, vocabSize));
  runs.ep2.push(await twoProcessExpertParallel(path));
  runs.cliEp2.push(cliMesh(path, vocabSize));
}
const summary = (list) => ({ prefillTokensPerSecond: best(list, 'prefillTokensPerSecond'), decodeTokensPerSecond: best(list, 'decodeTokensPerSecond') });
const ours = summary(runs.tessera);
const theirs = summary(runs.llamaCpp);
const ep2 = summary(runs.ep2);
const cliEp2 = summary(runs.cliEp2);
const report = {
  benchmark: 'moe',
  date: new Date().toISOString(),
  machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadAverageBefore: loadBefore, loadAverageAfter: os.loadavg(), node: process.version },
  model: { preset: options.preset, dtype: options.dtype, promptTokens: promptLength, generatedTokens: tokens, threads },
  tessera: ours,
  llamaCpp: theirs,
  expertParallel2Processes: ep2,
  cliMeshEp2: cliEp2,
  ratios: {
    prefillTesseraOverLlamaCpp: ours.prefillTokensPerSecond / theirs.prefillTokensPerSecond,
    decodeTesseraOverLlamaCpp: ours.decodeTokensPerSecond / theirs.decodeTokensPerSecond,
    prefillEp2OverEp1: ep2.prefillTokensPerSecond / ours.prefillTokensPerSecond,
    decodeEp2OverEp1: ep2.decodeTokensPerSecond / ours.decodeTokensPerSecond,
    prefillCliEp2OverEp1: cliEp2.prefillTokensPerSecond / ours.prefillTokensPerSecond,
    decodeCliEp2OverEp1: cliEp2.decodeTokensPerSecond / ours.decodeTokensPerSecond,
  },
  checks: {
    ep2SameIdsAsEp1: runs.ep2.every((run) => JSON.stringify(run.ids) === JSON.stringify(runs.tessera[0].ids)),
    ep2SameIdsOnBothRanks: runs.ep2.every((run) => run.sameIdsOnBothRanks),
    cliEp2SameIdsAsEp1: runs.cliEp2.every((run) => JSON.stringify(run.ids) === JSON.stringify(runs.tessera[0].ids.slice(0, run.ids.length))),
    greedyMatchesLlamaCpp: JSON.stringify(runs.llamaCpp[0].ids) === JSON.stringify(runs.tessera[0].ids.slice(0, runs.llamaCpp[0].ids.length)),
  },
  runs,
};
const resultsDir = join(fileURLToPath(new URL('.', import.meta.url)), 'results');
mkdirSync(resultsDir, { recursive: true });
const out = join(resultsDir, `moe-${report.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
console.log(JSON.stringify({ tessera: ours, llamaCpp: theirs, expertParallel2Processes: ep2, cliMeshEp2: cliEp2, ratios: report.ratios, checks: report.checks, machine: report.machine }, null, 2));
console.log(`wrote ${out}`);
