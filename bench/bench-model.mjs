// The benchmark scripts' model: the TinyLlama-1.1B shape in Q8_0, written
// once with `tessera synth --repeat-layers` (every layer with layer 0's
// weights: the same speed, written far faster) where the path holds none;
// and where the scripts find the project and its CLI.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_BENCH_MODEL = '/tmp/tessera-bench-models/tinyllama-q8_0.gguf';

/** The project's root, and the CLI the benchmarks run (the path a user takes). */
export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cli = join(root, 'bin', 'tessera.js');

/** Writes the model at `path` unless a file is there; ends the process when the write fails. */
export function ensureBenchModel(path) {
  if (existsSync(path)) return;
  mkdirSync(dirname(path), { recursive: true });
  console.log(`writing ${path} (tessera synth --preset tinyllama-1.1b --dtype q8_0 --repeat-layers)`);
  const made = spawnSync(process.execPath, [cli, 'synth', '--preset', 'tinyllama-1.1b', '--dtype', 'q8_0', '--repeat-layers', '--out', path], { stdio: 'inherit' });
  if (made.status !== 0) process.exit(1);
}
