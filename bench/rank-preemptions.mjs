// Who takes a tensor-parallel rank off its core, and for how long (issue 13).
// With shared rows a rank that loses its core for a while makes its peer wait
// at the next shared matmul; this counts those losses during a decode.
//
// It starts `tessera run --tp 2 --rank-threads 1 --transport shm` on a long
// decode, waits for the decode to be under way, records the kernel's
// scheduler switches machine-wide for a few seconds (`perf record -e
// sched:sched_switch -a`), and prints, for each of the two busiest threads
// (the ranks' main threads): how often it was switched out while still
// runnable (preempted), how long until it ran again (p50, p90, longest,
// sum), and which threads ran instead, named by process (rank, driver,
// another process).
//
//   node bench/rank-preemptions.mjs [--model M.gguf] [--seconds 4] [--wait 9] [--tokens 400]
//
// Needs `npm run build`, the native addon, and `perf` (Debian: linux-perf)
// allowed to read scheduler tracepoints (root, or kernel.perf_event_paranoid
// at -1). Without --model it uses (and first writes) the TinyLlama-1.1B-shape
// Q8_0 file of bench/parallel-decode.mjs. Prints only; nothing is written.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cli, DEFAULT_BENCH_MODEL, ensureBenchModel } from './bench-model.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_BENCH_MODEL },
    seconds: { type: 'string', default: '4' },
    wait: { type: 'string', default: '9' },
    tokens: { type: 'string', default: '400' },
  },
});

ensureBenchModel(values.model);

const run = spawn(process.execPath, [cli, 'run', '--model', values.model, '--prompt-ids', '1,450,4996', '--max-tokens', values.tokens, '--ignore-eos', '--json', '--tp', '2', '--pp', '1', '--rank-backend', 'native', '--rank-threads', '1', '--transport', 'shm'], { stdio: ['ignore', 'pipe', 'inherit'] });
let output = '';
run.stdout.on('data', (chunk) => (output += chunk));
const finished = new Promise((resolve) => run.once('exit', resolve));

await new Promise((resolve) => setTimeout(resolve, Number(values.wait) * 1000));
/** pid → what it is, read while the mesh runs. */
const roles = new Map([[run.pid, 'driver']]);
for (const entry of readdirSync('/proc')) {
  if (!/^\d+$/.test(entry)) continue;
  try {
    const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parent === run.pid) roles.set(Number(entry), `rank process ${entry}`);
  } catch {
    // gone meanwhile
  }
}
/** tid → pid, for every thread of the mesh's processes. */
const owner = new Map();
for (const pid of roles.keys()) {
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) owner.set(Number(tid), pid);
  } catch {
    // gone meanwhile
  }
}

const data = join(mkdtempSync(join(tmpdir(), 'tessera-sched-')), 'sched.data');
execFileSync('perf', ['record', '-q', '-e', 'sched:sched_switch', '-a', '-o', data, '--', 'sleep', values.seconds], { stdio: 'ignore' });
const script = execFileSync('perf', ['script', '-i', data], { encoding: 'utf8', maxBuffer: 1 << 28 });
await finished;

// "<comm> <tid> [cpu] <time>: sched:sched_switch: prev_comm=.. prev_pid=N prev_prio=.. prev_state=S ==> next_comm=.. next_pid=M next_prio=.."
const pattern = /\[(\d+)\]\s+([\d.]+): sched:sched_switch: prev_comm=(.*?) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)/;
const switches = [];
for (const line of script.split('\n')) {
  const match = pattern.exec(line);
  if (match) switches.push({ cpu: Number(match[1]), at: Number(match[2]), prev: Number(match[4]), state: match[5], nextName: match[6], next: Number(match[7]) });
}
if (switches.length === 0) throw new Error('perf recorded no scheduler switches (is perf allowed to read tracepoints? run as root)');

// Time on a CPU per thread, from one switch to the next on that CPU.
const onCpu = new Map();
const last = new Map();
for (const event of switches) {
  const before = last.get(event.cpu);
  if (before) onCpu.set(before.tid, (onCpu.get(before.tid) ?? 0) + event.at - before.at);
  last.set(event.cpu, { tid: event.next, at: event.at });
}
const names = new Map(switches.map((event) => [event.next, event.nextName]));
const nameOf = (tid) => {
  const pid = owner.get(tid);
  if (pid === undefined) return `${names.get(tid) ?? '?'} (${tid}, outside the mesh)`;
  const role = roles.get(pid);
  return tid === pid ? `${role} main thread` : `${role} helper thread ${tid}`;
};
const window = switches.at(-1).at - switches[0].at;
const ranks = [...onCpu.entries()].filter(([tid]) => owner.has(tid) && roles.get(owner.get(tid)) !== 'driver').sort((a, b) => b[1] - a[1]).slice(0, 2);
const quantile = (sorted, q) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]);
console.log(`${switches.length} switches over ${window.toFixed(2)} s; ${JSON.parse(output || '{}').timings?.decodeTokensPerSecond?.toFixed(1) ?? '?'} decode tok/s`);
for (const [tid, seconds] of ranks) {
  const stalls = [];
  const by = new Map();
  switches.forEach((event, index) => {
    if (event.prev !== tid || !event.state.startsWith('R')) return;
    by.set(event.next, (by.get(event.next) ?? 0) + 1);
    const back = switches.slice(index + 1).find((later) => later.next === tid);
    if (back) stalls.push((back.at - event.at) * 1000);
  });
  stalls.sort((a, b) => a - b);
  const sum = stalls.reduce((total, ms) => total + ms, 0);
  console.log(`${nameOf(tid)}: on a core ${seconds.toFixed(2)} s; preempted ${stalls.length} times; off its core p50 ${quantile(stalls, 0.5).toFixed(3)} p90 ${quantile(stalls, 0.9).toFixed(3)} longest ${quantile(stalls, 1).toFixed(3)} ms, ${sum.toFixed(1)} ms in all (${((sum / 1000 / window) * 100).toFixed(1)}%)`);
  for (const [other, count] of [...by.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`    ${count} × ${nameOf(other)}`);
}
