/**
 * `tessera bench`: the group of benchmark subcommands. Each benchmark
 * registers itself on the group this returns (`bench serve` here; others add
 * theirs with one line each).
 */
import type { Command } from 'commander';
import { registerBenchCommCommand } from './bench-comm.js';
import { registerBenchEngineCommand } from './bench-engine.js';
import { registerBenchPdCommand } from './bench-pd.js';
import { registerBenchRouterCommand } from './bench-router.js';
import { registerBenchServeCommand } from './bench-serve.js';

export function registerBenchCommand(program: Command): Command {
  const bench = program.command('bench').description('benchmarks (results as JSON under bench/results/)');
  registerBenchServeCommand(bench);
  registerBenchCommCommand(bench);
  registerBenchEngineCommand(bench);
  registerBenchRouterCommand(bench);
  registerBenchPdCommand(bench);
  return bench;
}
