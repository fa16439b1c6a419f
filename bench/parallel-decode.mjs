// Decode speed of one model split over processes against one process with
// the same total threads, side by side in one run, through the CLI users take
// (issue 13):
//
//   one sequence, `tessera run --json --ignore-eos`:
//     1 process × T threads        vs  tp 2 × T/2 threads (--transport auto = shm)
//                                      and the same with bursts of 8 decode steps per round trip
//                                      (--decode-burst 8, src/cluster/decode-burst.ts)
//                                      and the same running ahead (TESSERA_RUN_AHEAD=1; the default only
//                                      where the forked ranks leave cores free)
//                                      and the same with a fixed split of the feed-forward (TESSERA_TP_SHARE=0)
//     (with --all: also tp 2 over tcp, tp 2 with logits sampled on the driver
//     (TESSERA_RANK_PICKS=0), tp 2 with the TypeScript collectives, pp 2)
//   8 sequences in flight, `tessera bench serve --concurrency 8`:
//     1 process × T threads        vs  pp 2 × T/2 threads (the engine core's groups in flight)
//                                      and pp 2 × T/2 threads with TESSERA_PP_OVERLAP=0
//
// Configurations alternate round by round, so a slow spell of the machine
// hits all of them; every round's ratio is recorded, and the floors (1.0× on
// the 2-core machine, 0.95× on the 16-core one) are checked on the run's
// median round.
// Every tp/pp run must generate the tokens of the one-process run (checked).
// Each mesh rank's time per decode token (compute, waiting for peers,
// transfer, event loop) comes from `run --json`'s `mesh` field.
//
//   node bench/parallel-decode.mjs [--model M.gguf] [--threads 2] [--tokens 64] [--rounds 3] [--sequences 8] [--all]
//                                  [--label L] [--out DIR] [--budget-s S]
//
// Without --model it uses /tmp/tessera-bench-models/tinyllama-q8_0.gguf; a
// model path that does not exist is written first with `tessera synth
// --preset tinyllama-1.1b --dtype q8_0 --repeat-layers` (every layer with
// layer 0's weights: the same speed, written far faster). Needs `npm run
// build` and the native addon. Results: DIR/parallel-decode-*.json (default
// bench/results). --budget-s bounds the whole run: no round starts that the
// previous one says would not fit, and every command is killed at the budget
// (the JSON keeps the rounds that finished). On a 16-core machine:
//   node bench/parallel-decode.mjs --threads 16 --model M.gguf --out DIR --budget-s 200
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cli, DEFAULT_BENCH_MODEL, ensureBenchModel, root } from './bench-model.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_BENCH_MODEL },
    threads: { type: 'string', default: '2' },
    tokens: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
    sequences: { type: 'string', default: '8' },
    all: { type: 'boolean', default: false },
    out: { type: 'string', default: join(root, 'bench', 'results') },
    label: { type: 'string', default: '' },
    'budget-s': { type: 'string', default: '0' },
  },
});
const started = performance.now();
const budgetMs = Number(values['budget-s']) * 1000;
/** Milliseconds left of --budget-s (Infinity without one). */
const leftMs = () => (budgetMs > 0 ? budgetMs - (performance.now() - started) : Infinity);

class OutOfBudget extends Error {
  constructor(args) {
    super(`--budget-s ${values['budget-s']} ran out during tessera ${args.slice(0, 2).join(' ')}`);
  }
}
const threads = Number(values.threads);
const half = Math.max(1, Math.floor(threads / 2));
const tokens = Number(values.tokens);
const sequences = Number(values.sequences);
const floor = threads >= 16 ? 0.95 : 1.0;

function tessera(args, env = {}) {
  const timeout = Number.isFinite(leftMs()) ? Math.max(1000, Math.floor(leftMs())) : undefined;
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 256 * 2 ** 20, timeout, killSignal: 'SIGKILL' });
  if (result.error?.code === 'ETIMEDOUT') throw new OutOfBudget(args);
  if (result.status !== 0) throw new Error(`tessera ${args.join(' ')} failed:\n${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

ensureBenchModel(values.model);

const run = ['run', '--model', values.model, '--prompt-ids', '1,450,4996', '--max-tokens', String(tokens), '--ignore-eos', '--json'];
const mesh = (tp, pp, transport) => ['--tp', String(tp), '--pp', String(pp), '--rank-backend', 'native', '--rank-threads', String(half), '--transport', transport];
const single = [
  { name: `1 process x ${threads} threads`, args: [...run, '--backend', 'native', '--threads', String(threads)] },
  { name: `tp 2 x ${half} threads (shm)`, args: [...run, ...mesh(2, 1, 'auto')] },
  // Up to 8 decode steps per round trip to the driver (src/cluster/decode-burst.ts): what the driver's turnaround costs.
  { name: `tp 2 x ${half} threads (shm), bursts of 8`, args: [...run, ...mesh(2, 1, 'auto'), '--decode-burst', '8'] },
  // The ranks compute each next step ahead even where they fill the cores (src/cluster/run-ahead.ts runAheadWanted):
  // the other side of that default (on a machine with cores to spare it is the default itself).
  { name: `tp 2 x ${half} threads (shm), running ahead`, args: [...run, ...mesh(2, 1, 'auto')], env: { TESSERA_RUN_AHEAD: '1' } },
  // The feed-forward's rows split at a fixed point instead of shared as the ranks go (shared-feed-forward.ts): what sharing buys.
  { name: `tp 2 x ${half} threads (shm), fixed split`, args: [...run, ...mesh(2, 1, 'auto')], env: { TESSERA_TP_SHARE: '0' } },
  ...(values.all
    ? [
        { name: `tp 2 x ${half} threads (tcp)`, args: [...run, ...mesh(2, 1, 'tcp')] },
        // Every row's logits back to the driver, sampled there (before tokens were picked on the rank): what the picks buy.
        { name: `tp 2 x ${half} threads (shm), logits to the driver`, args: [...run, ...mesh(2, 1, 'auto')], env: { TESSERA_RANK_PICKS: '0' } },
        { name: `tp 2 x ${half} threads (unix, TypeScript collectives)`, args: [...run, ...mesh(2, 1, 'unix')], env: { TESSERA_NATIVE_COLLECTIVES: '0' } },
        { name: `pp 2 x ${half} threads (shm)`, args: [...run, ...mesh(1, 2, 'auto')] },
      ]
    : []),
];
const serve = ['bench', 'serve', '--model', values.model, '--concurrency', String(sequences), '--prompt-len', '16', '--output-len', String(tokens), '--rounds', '1', '--out', mkdtempSync(join(tmpdir(), 'tessera-parallel-decode-'))];
const batched = [
  { name: `${sequences} sequences, 1 process x ${threads} threads`, args: [...serve, '--backend', 'native', '--threads', String(threads)] },
  { name: `${sequences} sequences, pp 2 x ${half} threads (shm)`, args: [...serve, ...mesh(1, 2, 'auto')] },
  // The same without the engine core's groups in flight (each step's micro-batches only): what the overlap buys.
  { name: `${sequences} sequences, pp 2 x ${half} threads, one group in flight`, args: [...serve, ...mesh(1, 2, 'auto')], env: { TESSERA_PP_OVERLAP: '0' } },
  // Each stage with all T threads: a stage idles while the other computes (an engine step's micro-batches cannot fill the pipeline).
  ...(values.all ? [{ name: `${sequences} sequences, pp 2 x ${threads} threads (shm)`, args: [...serve, ...mesh(1, 2, 'auto').slice(0, -4), '--rank-threads', String(threads), '--transport', 'auto'] }] : []),
];

const loadBefore = loadavg();
const rounds = [];
let reference;
let stoppedBy = '';
for (let round = 0; round < Number(values.rounds); round++) {
  const roundStarted = performance.now();
  try {
    rounds.push(runRound(round));
  } catch (error) {
    if (!(error instanceof OutOfBudget)) throw error;
    stoppedBy = error.message;
    break;
  }
  // The next round would take about as long as this one: stop while the JSON can still be written.
  if (performance.now() - roundStarted > leftMs()) {
    stoppedBy = `--budget-s ${values['budget-s']}: ${round + 1} round(s) fit`;
    break;
  }
}
if (stoppedBy) console.log(`stopped: ${stoppedBy}`);
if (rounds.length === 0) throw new Error(`no round finished (${stoppedBy})`);

function runRound(round) {
  const rows = {};
  for (const config of single) {
    const result = tessera(config.args, config.env);
    reference ??= result.ids;
    if (JSON.stringify(result.ids) !== JSON.stringify(reference)) throw new Error(`${config.name} generated other tokens than the first configuration`);
    const tokensPerSecond = result.timings.decodeTokensPerSecond;
    rows[config.name] = { tokensPerSecond, mesh: result.mesh && perToken(result.mesh, tokensPerSecond) };
    console.log(`round ${round + 1}  ${config.name.padEnd(48)} ${tokensPerSecond.toFixed(2).padStart(8)} tok/s${describe(rows[config.name].mesh)}`);
  }
  for (const config of batched) {
    const level = tessera(config.args, config.env).results[0];
    // Aggregate decode rate: every sequence makes one token per TPOT.
    const decodeTokensPerSecond = (sequences * 1000) / level.tpotMs.p50;
    rows[config.name] = { outputTokensPerSecond: level.outputTokensPerSecond, tpotMsP50: level.tpotMs.p50, decodeTokensPerSecond };
    console.log(`round ${round + 1}  ${config.name.padEnd(48)} ${decodeTokensPerSecond.toFixed(2).padStart(8)} decode tok/s (output ${level.outputTokensPerSecond.toFixed(1)} tok/s, TPOT p50 ${level.tpotMs.p50.toFixed(1)} ms)`);
  }
  return { rows, loadAfter: loadavg() };
}

const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
const ratios = (name, base, key) => rounds.map((round) => round.rows[name][key] / round.rows[base][key]);
const tpRatios = ratios(single[1].name, single[0].name, 'tokensPerSecond');
const tpBurstRatios = ratios(single[2].name, single[0].name, 'tokensPerSecond');
const tpAheadRatios = ratios(single[3].name, single[0].name, 'tokensPerSecond');
const tpFixedRatios = ratios(single[4].name, single[0].name, 'tokensPerSecond');
const ppRatios = ratios(batched[1].name, batched[0].name, 'decodeTokensPerSecond');
const ppOneGroupRatios = ratios(batched[2].name, batched[0].name, 'decodeTokensPerSecond');
// A run's ratio is the median of its rounds' (each round runs both sides back to back).
const summary = {
  tp2OverOneProcess: { perRound: tpRatios, median: median(tpRatios), floor, holds: median(tpRatios) >= floor },
  tp2BurstsOverOneProcess: { perRound: tpBurstRatios, median: median(tpBurstRatios) },
  tp2RunningAheadOverOneProcess: { perRound: tpAheadRatios, median: median(tpAheadRatios) },
  tp2FixedSplitOverOneProcess: { perRound: tpFixedRatios, median: median(tpFixedRatios) },
  pp2OverOneProcessWithSequences: { sequences, perRound: ppRatios, median: median(ppRatios), floor: 1.0, holds: median(ppRatios) >= 1.0 },
  pp2OneGroupInFlightOverOneProcess: { sequences, perRound: ppOneGroupRatios, median: median(ppOneGroupRatios) },
};
console.log(`tp 2 / 1 process: median ${median(tpRatios).toFixed(3)}, per round ${tpRatios.map((r) => r.toFixed(3)).join(', ')} (floor ${floor})`);
console.log(`tp 2 with bursts of 8 / 1 process: median ${median(tpBurstRatios).toFixed(3)}, per round ${tpBurstRatios.map((r) => r.toFixed(3)).join(', ')}`);
console.log(`tp 2 running ahead / 1 process: median ${median(tpAheadRatios).toFixed(3)}, per round ${tpAheadRatios.map((r) => r.toFixed(3)).join(', ')}`);
console.log(`tp 2 with a fixed split / 1 process: median ${median(tpFixedRatios).toFixed(3)}, per round ${tpFixedRatios.map((r) => r.toFixed(3)).join(', ')}`);
console.log(`pp 2 / 1 process with ${sequences} sequences: median ${median(ppRatios).toFixed(3)}, per round ${ppRatios.map((r) => r.toFixed(3)).join(', ')} (floor 1.0)`);
console.log(`pp 2 with one group in flight / 1 process: median ${median(ppOneGroupRatios).toFixed(3)}, per round ${ppOneGroupRatios.map((r) => r.toFixed(3)).join(', ')}`);

const date = new Date().toISOString();
const report = {
  benchmark: 'parallel-decode',
  path: 'cli',
  model: values.model,
  threads,
  tokens,
  label: values.label,
  date,
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), loadBefore, loadAfter: loadavg() },
  commands: { single: single.map((c) => ({ name: c.name, command: `tessera ${c.args.join(' ')}`, env: c.env })), batched: batched.map((c) => ({ name: c.name, command: `tessera ${c.args.join(' ')}`, env: c.env })) },
  rounds,
  stoppedBy: stoppedBy || undefined,
  summary,
  sameTokens: true,
};
mkdirSync(values.out, { recursive: true });
const file = join(values.out, `parallel-decode-${values.label ? `${values.label}-` : ''}${threads}t-${date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(report, null, 1)}\n`);
console.log(`written to ${file}`);

/** Each rank's milliseconds per decode token, and what the driver and control messages add on top of the slowest rank. */
function perToken(meshReport, tokensPerSecond) {
  const ranks = meshReport.ranks.map((rank) => ({ rank: rank.rank, ...rank.decode, ahead: rank.ahead }));
  const slowest = Math.max(...ranks.map((rank) => rank.stepMs));
  return { transport: meshReport.transport, ranks, driverAndControlMs: 1000 / tokensPerSecond - slowest };
}

function describe(times) {
  if (!times) return '';
  const parts = times.ranks.map((r) => `r${r.rank} compute ${r.computeMs.toFixed(1)} wait ${r.waitMs.toFixed(1)} transfer ${r.transferMs.toFixed(2)} loop ${r.eventLoopMs.toFixed(2)}${r.ahead?.used ? ` ahead ${r.ahead.used}/${r.ahead.used + r.ahead.missed}` : ''}`);
  return `  [${parts.join(' | ')} | driver ${times.driverAndControlMs.toFixed(1)} ms]`;
}
