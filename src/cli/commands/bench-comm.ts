/** `tessera bench comm`: collective latency and bus bandwidth by message size, next to the raw link. */
import type { Command } from 'commander';
import { join } from 'node:path';
import { TesseraError } from '../../core/errors.js';
import { runCommBench, type CommBenchReport } from '../../parallel/comm-bench.js';
import { numberOption } from '../model-options.js';
import { resolveTransport } from '../parallel-options.js';

interface CommOptions {
  ranks: number;
  transport: 'auto' | 'shm' | 'unix' | 'tcp';
  minBytes: number;
  maxBytes: number;
  seconds: number;
  repetitions: number;
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
    .option('--repetitions <n>', 'interleaved repetitions of every measurement (figures are medians)', numberOption('--repetitions', 1, 100, true), 5)
    .option('--out <dir>', 'folder for the JSON result', join('bench', 'results'))
    .option('--json', 'print the whole result as JSON')
    .action(async (options: CommOptions) => {
      if (options.transport !== 'auto' && options.transport !== 'tcp' && options.transport !== 'unix' && options.transport !== 'shm') {
        throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--transport must be auto, shm, unix or tcp, got "${options.transport}"`);
      }
      const sizes: number[] = [];
      for (let bytes = options.minBytes; bytes <= options.maxBytes; bytes *= 4) sizes.push(bytes);
      const report = await runCommBench({ ranks: options.ranks, transport: resolveTransport(options.transport, true), sizes, budgetSeconds: options.seconds, repetitions: options.repetitions, outDir: options.out });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return;
      }
      printReport(report);
      process.stdout.write(`written to ${report.file}\n`);
    });
}

function printReport(report: CommBenchReport): void {
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  out(`${report.ranks} ranks over ${report.transport}, native plane: ${report.plane} (${report.machine.cpu}, load ${report.machine.loadBefore[0].toFixed(2)}); medians of ${report.repetitions} interleaved repetitions`);
  out('raw link rank 0 → 1:\n         bytes   one-way GB/s  per direction, both ways GB/s');
  for (const l of report.link) out(`${String(l.bytes).padStart(14)} ${l.oneWayGBps.toFixed(3).padStart(14)} ${l.perDirectionBothWaysGBps.toFixed(3).padStart(15)}`);
  out('collective           path          bytes   latency µs    alg GB/s    bus GB/s');
  for (const c of report.collectives) {
    out(`${c.collective.padEnd(20)} ${c.path.padEnd(9)} ${String(c.bytes).padStart(10)} ${c.latencyUs.toFixed(1).padStart(12)} ${c.algorithmGBps.toFixed(3).padStart(11)} ${c.busGBps.toFixed(3).padStart(11)}`);
  }
  out('all-reduce bus bandwidth over the one-way link (of the medians; then each repetition against the link run beside it):');
  for (const r of report.allReduceOverLink) {
    const each = r.repetitionRatios.map((ratio) => `${Math.round(ratio * 100)}%`).join(' ');
    out(`${r.collective.padEnd(20)} ${r.path.padEnd(9)} ${String(r.bytes).padStart(10)} ${`${Math.round(r.ratio * 100)}%`.padStart(6)}   ${each}`);
  }
}
