/** `tessera worker`: join a coordinator as one rank of a mesh and serve its steps. */
import type { Command } from 'commander';
import { TesseraError } from '../../core/errors.js';
import { runWorker } from '../../cluster/worker.js';
import { numberOption, tileCacheOption } from '../model-options.js';

interface WorkerOptions {
  join: string;
  token?: string;
  threads?: number;
  memoryMib?: number;
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('join a `tessera run|logits|serve --listen HOST:PORT` coordinator (starting or running: a running mesh grows) as one node')
    .requiredOption('--join <host:port>', 'address the coordinator listens on')
    .option('--token <t>', 'join token the coordinator printed (or TESSERA_JOIN_TOKEN)')
    .option('--threads <n>', 'compute threads of this rank (native backend)', numberOption('--threads', 1, 1024, true))
    .option('--memory-mib <n>', 'memory this worker offers for the model; placement keeps each rank within it (default: free memory at join)', numberOption('--memory-mib', 1, 1e9, true))
    .addOption(tileCacheOption())
    .option('--verbose', 'print stack traces on errors')
    .action(async (options: WorkerOptions) => {
      const token = options.token ?? process.env.TESSERA_JOIN_TOKEN;
      if (!token) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'give --token (the one the coordinator printed) or set TESSERA_JOIN_TOKEN');
      await runWorker({ join: options.join, token, threads: options.threads, memoryMib: options.memoryMib });
    });
}
