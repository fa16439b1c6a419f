/** `tessera worker`: join a coordinator as one rank of a mesh and serve its steps. */
import type { Command } from 'commander';
import { TesseraError } from '../../core/errors.js';
import { runWorker } from '../../cluster/worker.js';
import { numberOption, tileCacheOption } from '../model-options.js';

interface WorkerOptions {
  join: string;
  token?: string;
  threads?: number;
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('join a `tessera run|logits --listen HOST:PORT` coordinator as one rank')
    .requiredOption('--join <host:port>', 'address the coordinator listens on')
    .option('--token <t>', 'join token the coordinator printed (or TESSERA_JOIN_TOKEN)')
    .option('--threads <n>', 'compute threads of this rank (native backend)', numberOption('--threads', 1, 1024, true))
    .addOption(tileCacheOption())
    .option('--verbose', 'print stack traces on errors')
    .action(async (options: WorkerOptions) => {
      const token = options.token ?? process.env.TESSERA_JOIN_TOKEN;
      if (!token) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'give --token (the one the coordinator printed) or set TESSERA_JOIN_TOKEN');
      await runWorker({ join: options.join, token, threads: options.threads });
    });
}
