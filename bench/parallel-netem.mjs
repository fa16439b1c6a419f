// Decode tokens/s with the ranks on two "hosts" (network namespaces joined by
// a veth bridge), plain and shaped with `tc netem` (default 1 Gbit/s and
// 0.2 ms on every packet a host sends; a tbf rate limit alone where the
// kernel has no netem), to show where the network starts to dominate
// (issue 4). Each rank is one process with 1 native thread.
//
//   node bench/parallel-netem.mjs --model /tmp/tinyllama-q8.gguf [--tokens 16] [--rate 1gbit] [--delay 0.2ms]
//
// Needs root, `npm run build` and the native addon.
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { makeHosts } from '../dist/cluster/netns.case.js';
import { openMeshEngine } from '../dist/cluster/mesh-engine.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    tokens: { type: 'string', default: '16' },
    rate: { type: 'string', default: '1gbit' },
    delay: { type: 'string', default: '0.2ms' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const prompt = [1, 450, 4996];
const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;

async function run(shape, shaping) {
  const hosts = makeHosts(2, shaping);
  if (typeof hosts === 'string') throw new Error(hosts);
  const workers = [];
  try {
    let announce;
    const joinAddress = new Promise((resolve) => (announce = resolve));
    const log = (line) => {
      const match = /--join (\S+) --token/.exec(line);
      if (match) announce(match[1]);
    };
    const opening = openMeshEngine(values.model, { ...shape, transport: 'tcp', spawn: false, host: hosts.bridgeAddress, token: 'bench', backend: 'native', threads: 1, log });
    const address = await joinAddress;
    for (const ns of hosts.namespaces) workers.push(spawn('ip', ['netns', 'exec', ns, process.execPath, cli, 'worker', '--join', address, '--token', 'bench'], { stdio: 'ignore' }));
    const { engine, coordinator } = await opening;
    await engine.complete({ promptIds: prompt, maxTokens: 4, ignoreEos: true });
    coordinator.totals = { steps: 0, computeMs: 0, waitMs: 0 };
    const result = await engine.complete({ promptIds: prompt, maxTokens: Number(values.tokens), ignoreEos: true });
    const { steps, computeMs, waitMs } = coordinator.totals;
    await coordinator.close();
    return { shaping: hosts.shaping, ids: result.ids, tokensPerSecond: result.timings.decodeTokensPerSecond, computeMsPerToken: computeMs / steps, waitMsPerToken: waitMs / steps };
  } finally {
    for (const worker of workers) worker.kill('SIGKILL');
    hosts.remove();
  }
}

const loadBefore = loadavg();
const rows = [];
let reference;
for (const shape of [{ tp: 2, pp: 1 }, { tp: 1, pp: 2 }]) {
  for (const shaping of [undefined, { rate: values.rate, delay: values.delay }]) {
    const result = await run(shape, shaping);
    reference ??= result.ids;
    if (JSON.stringify(result.ids) !== JSON.stringify(reference)) throw new Error('a configuration generated different tokens');
    const name = `tp${shape.tp} pp${shape.pp} ${shaping ? result.shaping : 'veth, unshaped'}`;
    rows.push({ config: name, ...result, ids: undefined });
    console.log(`${name.padEnd(32)} ${result.tokensPerSecond.toFixed(2).padStart(7)} tok/s  per token: compute ${result.computeMsPerToken.toFixed(1)} ms, waiting ${result.waitMsPerToken.toFixed(1)} ms`);
  }
}
const date = new Date().toISOString();
mkdirSync(values.out, { recursive: true });
const file = `${values.out}/parallel-netem-${date.replace(/[:.]/g, '-')}.json`;
writeFileSync(file, `${JSON.stringify({ benchmark: 'parallel-netem', model: values.model, tokens: Number(values.tokens), date, machine: { cpu: cpus()[0]?.model, cores: cpus().length, loadBefore, loadAfter: loadavg() }, rows, sameTokens: true }, null, 1)}\n`);
console.log(`written to ${file}`);
