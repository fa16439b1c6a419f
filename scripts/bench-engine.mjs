// `npm run bench:engine`: synthesizes TinyLlama-1.1B-shape models (Q8_0, Q4_0, F16, Q4_K_M) once into a cache
// folder, then runs `tessera bench engine` on each with the given extra flags (e.g. -- --threads 2).
// Results go to bench/results/engine-*.json.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const cache = process.env.TESSERA_BENCH_MODELS ?? join(tmpdir(), 'tessera-bench-models');
const dtypes = (process.env.TESSERA_BENCH_DTYPES ?? 'q8_0,q4_0,f16,q4_k_m').split(',');
const extra = process.argv.slice(2);
const bin = new URL('../bin/tessera.js', import.meta.url).pathname;
mkdirSync(cache, { recursive: true });

function tessera(args) {
  const result = spawnSync(process.execPath, [bin, ...args], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

for (const dtype of dtypes) {
  const model = join(cache, `tinyllama-1.1b-${dtype}.gguf`);
  if (!existsSync(model)) tessera(['synth', '--preset', 'tinyllama-1.1b', '--arch', 'llama', '--dtype', dtype, '--seed', '1', '--out', model]);
  tessera(['bench', 'engine', '--model', model, ...extra]);
}
