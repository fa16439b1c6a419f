// Re-sharding a live mesh (issue 12), on TinyLlama-1.1B-shape Q8_0 with native ranks:
//   lose: tp 2 → SIGKILL one worker mid-generation → tp 1 on the survivor;
//   grow: pp 1 → a worker joins mid-generation → pp 2.
// An engine core drives S greedy sequences through the mesh (as `serve` does). For each
// change: time from the failure (or the join) to the first resumed token, the parts the
// coordinator records (detection, replan, load, first logits, re-prefill), bytes each rank
// read against the model size and against the floor (what the new layout added to what the
// rank held), decode throughput before and after, and whether the tokens equal a run
// without the change. Writes bench/results/reshard-<date>.json.
//
//   node bench/reshard.mjs [--model /tmp/tessera-bench-models/tinyllama-q8_0.gguf] [--sequences 4] [--tokens 96]
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { openMeshEngine } from '../dist/cluster/mesh-engine.js';
import { EngineCore } from '../dist/engine/engine-core.js';
import { samplingParams } from '../dist/engine/sampler.js';
import { synthesize } from '../dist/synth/synthesize.js';
import { describeMachine } from '../dist/bench/machine.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '/tmp/tessera-bench-models/tinyllama-q8_0.gguf' },
    sequences: { type: 'string', default: '4' },
    tokens: { type: 'string', default: '96' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const S = Number(values.sequences);
const TOKENS = Number(values.tokens);
const model = values.model;
const TOKEN = 'reshard-bench';

if (!existsSync(model)) {
  process.stderr.write(`${model} is absent: writing it (tessera synth --preset tinyllama-1.1b --dtype q8_0)…\n`);
  mkdirSync(dirname(model), { recursive: true });
  await synthesize({ preset: 'tinyllama-1.1b', arch: 'llama', dtype: 'q8_0', out: model, format: 'gguf', seed: 1 });
}

/** Runs S sequences to the end; `change(core)` fires once 1/3 of the tokens are out and returns when it happened (performance.now()). */
async function run(shape, change) {
  const { engine, coordinator, coreRunner } = await openMeshEngine(model, { ...shape, transport: 'unix', spawn: true, backend: 'native', token: TOKEN });
  try {
    const core = new EngineCore(coreRunner, engine.config, engine.tokenizer, { kvCacheMib: 256, maxNumSeqs: S, maxBatchTokens: 512 });
    for (let s = 0; s < S; s++) {
      const promptIds = [1, ...Array.from({ length: 31 }, (_, i) => 100 + ((s * 977 + i * 131) % 30000))];
      core.add(s, { promptIds, maxTokens: TOKENS, sampling: samplingParams({ temperature: 0 }), stop: [], ignoreEos: true });
    }
    const ids = Array.from({ length: S }, () => []);
    const steps = [];
    let changedAt;
    let generated = 0;
    while (core.hasWork) {
      const report = await core.step();
      const now = performance.now();
      let fresh = 0;
      for (const output of report.outputs) {
        if (output.error) throw new Error(`sequence ${output.sequenceId} failed: ${output.error.code} ${output.error.message}`);
        ids[output.sequenceId].push(...output.ids);
        fresh += output.ids.length;
      }
      generated += fresh;
      steps.push({ at: now, tokens: fresh });
      if (change && changedAt === undefined && generated >= (S * TOKENS) / 3) changedAt = await change(coordinator);
    }
    return { ids, steps, changedAt, records: coordinator.reshards.records, history: coordinator.history, layout: coordinator.describe().layout };
  } finally {
    await coordinator.close();
  }
}

/** Decode tokens per second over steps in [from, to). */
function throughput(steps, from, to) {
  const inside = steps.filter((step) => step.at >= from && step.at < to);
  if (inside.length < 2) return undefined;
  const tokens = inside.slice(1).reduce((sum, step) => sum + step.tokens, 0);
  return tokens / ((inside.at(-1).at - inside[0].at) / 1000);
}

function summarize(name, baseline, changed, modelBytes) {
  const record = changed.records.at(-1);
  const resumed = changed.steps.find((step) => step.at > changed.changedAt && step.tokens > 0);
  const firstDecode = changed.steps.find((step) => step.tokens === S)?.at ?? 0;
  // After the change: from the first step in which every sequence decodes again (re-prefill done).
  const decodingAgain = changed.steps.find((step) => step.at > resumed.at && step.tokens === S)?.at ?? resumed.at;
  const ranks = record.ranks.map((rank) => ({ ...rank, withinFloor: rank.bytesRead <= rank.newBytes }));
  const bytesRead = ranks.reduce((sum, rank) => sum + rank.bytesRead, 0);
  return {
    name,
    layoutBefore: changed.records[0] && { tp: changed.records[0].tp, pp: changed.records[0].pp },
    layoutAfter: changed.layout,
    identicalTokens: JSON.stringify(baseline.ids) === JSON.stringify(changed.ids),
    changeToFirstResumedTokenMs: resumed.at - changed.changedAt,
    coordinator: { silentMs: record.silentMs, replanMs: record.replanMs, loadMs: record.loadMs, firstLogitsMs: record.firstLogitsMs, rePrefillMs: record.rePrefillMs },
    bytesRead,
    modelBytes,
    bytesReadOfModel: bytesRead / modelBytes,
    floorHolds: ranks.every((rank) => rank.withinFloor),
    ranks,
    decodeTokensPerSecond: { before: throughput(changed.steps, firstDecode, changed.changedAt), after: throughput(changed.steps, decodingAgain, Infinity) },
  };
}

const loadBefore = loadavg();
const modelBytes = statSync(model).size;
const results = [];

// Lose: tp 2 → kill the worker of rank 1 → tp 1.
{
  const baseline = await run({ tp: 2, pp: 1 });
  const changed = await run({ tp: 2, pp: 1 }, async (coordinator) => {
    const victim = coordinator.describe().nodes.find((node) => node.rank === 1);
    process.kill(victim.pid, 'SIGKILL');
    return performance.now();
  });
  results.push(summarize('tp 2 → lose a worker → tp 1', baseline, changed, modelBytes));
}

// Grow: pp 1 → a worker joins → pp 2.
{
  const baseline = await run({ tp: 1, pp: 1 });
  let joiner;
  const changed = await run({ tp: 1, pp: 1 }, async (coordinator) => {
    joiner = spawn(process.execPath, [join(root, 'bin', 'tessera.js'), 'worker', '--join', coordinator.joinAddress, '--token', TOKEN, '--threads', '1'], { stdio: 'ignore' });
    while (coordinator.cluster.nodes.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    return performance.now();
  });
  joiner?.kill('SIGKILL');
  results.push({ ...summarize('pp 1 → a worker joins → pp 2', baseline, changed, modelBytes), note: 'timed from the join (the joining process started before)' });
}

const report = { benchmark: 'reshard', model, sequences: S, tokens: TOKENS, machine: describeMachine(), loadAverage: { before: loadBefore, after: loadavg() }, results };
mkdirSync(values.out, { recursive: true });
const file = join(values.out, `reshard-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
for (const result of results) {
  process.stdout.write(
    `${result.name}: first resumed token ${result.changeToFirstResumedTokenMs.toFixed(0)} ms after the change, read ${(result.bytesReadOfModel * 100).toFixed(1)}% of the model (floor ${result.floorHolds ? 'holds' : 'BROKEN'}), ` +
      `decode ${result.decodeTokensPerSecond.before?.toFixed(1)} → ${result.decodeTokensPerSecond.after?.toFixed(1)} tok/s, tokens ${result.identicalTokens ? 'identical' : 'DIFFER'}\n`,
  );
}
process.stdout.write(`wrote ${file}\n`);
