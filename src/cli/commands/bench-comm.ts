/** `tessera bench comm`: collective latency and bus bandwidth by message size, next to the raw link. */
import type { Command } from 'commander';
import { join } from 'node:path';
import { TesseraError } from '../../core/errors.js';
import { runCommBench } from '../../parallel/comm-bench.js';
import { numberOption } from '../model-options.js';
import { resolveTransport } from '../parallel-options.js';

interface CommOptions {
  ranks: number;
  transport: 'auto' | 'shm' | 'unix' | 'tcp';
  minBytes: number;
  maxBytes: number;
  seconds: number;
  out: string;
  json?: boolean;
}

export function registerBenchCommCommand(bench: Command): void {
  bench
    .command('comm')
    .description('collective latency and bus bandwidth by message size, next to the raw link throughput (nccl-tests style)')
    .option('--ranks <n>', 'ranks (processes on this machine)', numberOption('--ranks', 2, 64, true), 2)
    .option('--transport <kind>', 'auto (shm when the native addon is built, else tcp), shm, unix or tcp', 'auto')
    .option('--min-bytes <n>', 'smallest message', numberOption('--min-bytes', 4, 2 ** 31, true), 4)
    .option('--max-bytes <n>', 'largest message', numberOption('--max-bytes', 4, 2 ** 31, true), 64 * 2 ** 20)
    .option('--seconds <s>', 'time per collective and size', numberOption('--seconds', 0.01, 60), 0.2)
    .option('--out <dir>', 'folder for the JSON result', join('bench', 'results'))
    .option('--json', 'print the whole result as JSON')
    .action(async (options: CommOptions) => {
      if (options.transport !== 'auto' && options.transport !== 'tcp' && options.transport !== 'unix' && options.transport !== 'shm') {
        throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--transport must be auto, shm, unix or tcp, got "${options.transport}"`);
      }
      const sizes: number[] = [];
      for (let bytes = options.minBytes; bytes <= options.maxBytes; bytes *= 4) sizes.push(bytes);
      const report = await runCommBench({ ranks: options.ranks, transport: resolveTransport(options.transport, true), sizes, budgetSeconds: options.seconds, outDir: options.out });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return;
      }
      process.stdout.write(`${report.ranks} ranks over ${report.transport}, native plane: ${report.plane} (${report.machine.cpu}, load ${report.machine.loadBefore[0].toFixed(2)})\n`);
      process.stdout.write('raw link rank 0 → 1:\n         bytes   one-way GB/s  per direction, both ways GB/s\n');
      for (const l of report.link) process.stdout.write(`${String(l.bytes).padStart(14)} ${l.oneWayGBps.toFixed(3).padStart(14)} ${l.perDirectionBothWaysGBps.toFixed(3).padStart(15)}\n`);
      process.stdout.write('collective           path          bytes   latency µs    alg GB/s    bus GB/s\n');
      for (const c of report.collectives) {
        process.stdout.write(`${c.collective.padEnd(20)} ${c.path.padEnd(9)} ${String(c.bytes).padStart(10)} ${c.latencyUs.toFixed(1).padStart(12)} ${c.algorithmGBps.toFixed(3).padStart(11)} ${c.busGBps.toFixed(3).padStart(11)}\n`);
      }
      process.stdout.write(`written to ${report.file}\n`);
    });
}
