/** `tessera bench engine`: Tessera vs llama.cpp on one GGUF file, same threads, same run. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { NativeBackend } from '../../backend/native/native-backend.js';
import { BACKEND_CHOICES, type BackendChoice } from '../../backend/native/select-backend.js';
import { runEngineBenchmark, type EngineBenchResult } from '../../bench/engine-benchmark.js';
import { numberOption, parseIdList, tileCacheOption } from '../model-options.js';

interface BenchEngineOptions {
  model: string;
  threads?: number;
  backend: BackendChoice;
  peer: string;
  flashAttention: boolean;
  rounds: number;
  promptLens: string;
  decodeTokens: number;
  decodeBatches: string;
  out: string;
}

export function registerBenchEngineCommand(bench: Command): void {
  bench
    .command('engine')
    .description('prefill/decode tok/s and load time of Tessera and llama.cpp on the same GGUF file, with the memory-bandwidth limit')
    .requiredOption('--model <path>', 'GGUF file (the peer reads GGUF only)')
    .option('--threads <n>', 'threads for both (default: physical cores)', numberOption('--threads', 1, 1024, true))
    .addOption(tileCacheOption())
    .addOption(new Option('--backend <name>', "Tessera's compute backend").choices([...BACKEND_CHOICES]).default('native'))
    .addOption(new Option('--peer <name>', 'the peer to run beside Tessera').choices(['llama.cpp', 'none']).default('llama.cpp'))
    .option('--no-flash-attention', "run the peer without flash attention (default: on, its best setting)")
    .option('--rounds <n>', 'alternating rounds; each figure is the best round', numberOption('--rounds', 1, 100, true), 3)
    .option('--prompt-lens <list>', 'prompt lengths for prefill', '128,512')
    .option('--decode-tokens <n>', 'tokens generated for the decode rate', numberOption('--decode-tokens', 2, 1e5, true), 64)
    .option('--decode-batches <list>', 'also measure decode of this many sequences stepping together, e.g. 1,16', '')
    .option('--out <dir>', 'folder for the JSON result', join('bench', 'results'))
    .action(async (options: BenchEngineOptions) => {
      const threads = options.threads ?? NativeBackend.describeCpu()?.physicalCores ?? availableParallelism();
      const result = await runEngineBenchmark({
        model: options.model,
        threads,
        backend: options.backend,
        peer: options.peer === 'llama.cpp',
        flashAttention: options.flashAttention,
        rounds: options.rounds,
        promptLengths: parseIdList(options.promptLens),
        decodeTokens: options.decodeTokens,
        decodeBatches: options.decodeBatches ? parseIdList(options.decodeBatches) : [],
        log: (line) => process.stderr.write(`${line}\n`),
      });
      mkdirSync(options.out, { recursive: true });
      const file = join(options.out, `engine-${result.date.replace(/[:.]/g, '-')}.json`);
      writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
      process.stdout.write(`${formatTable(result)}\nwrote ${file}\n`);
    });
}

function formatTable(result: EngineBenchResult): string {
  const rows: string[][] = [['', 'Tessera', 'llama.cpp', 'ratio']];
  const peer = result.llamaCpp;
  const cell = (value: number | undefined, digits = 1): string => (value === undefined ? '-' : value.toFixed(digits));
  for (const length of Object.keys(result.tessera.prefill)) {
    rows.push([`prefill ${length} tok/s`, cell(result.tessera.prefill[length]), cell(peer?.prefill[length]), cell(result.ratios?.prefill[length], 2)]);
  }
  rows.push([`decode tok/s`, cell(result.tessera.decode, 2), cell(peer?.decode, 2), cell(result.ratios?.decode, 2)]);
  for (const [size, rate] of Object.entries(result.tessera.batchDecode ?? {})) rows.push([`decode batch ${size} tok/s`, cell(rate, 2), '-', '']);
  rows.push(['decode / bandwidth limit', cell(result.tessera.decodeBandwidthFraction * 100) + '%', peer ? cell(peer.decodeBandwidthFraction * 100) + '%' : '-', '']);
  rows.push(['load ms', cell(result.tessera.loadMs, 0), cell(peer?.loadMs, 0), cell(result.ratios?.loadTime, 2)]);
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  const lines = rows.map((row) => row.map((text, column) => (column === 0 ? text.padEnd(widths[column]) : text.padStart(widths[column]))).join('  '));
  const where = result.device ? `${result.backend} on ${result.device.description || result.device.device}` : `${result.threads} threads, ${result.machine.cpuModel}`;
  const header = `${result.model.path} (${result.model.dtypes.join('+')}, ${(result.model.bytes / 2 ** 20).toFixed(0)} MiB), ${where}, bandwidth ${result.memoryBandwidthGBs.toFixed(1)} GB/s, load ${result.machine.loadAverage.toFixed(2)}`;
  return [header, ...lines, ...kernelLines(result)].join('\n');
}

/** The device time per kernel of a profiled run (TESSERA_WEBGPU_PROFILE=1), largest first. */
function kernelLines(result: EngineBenchResult): string[] {
  const kernels = Object.entries(result.gpuTimings?.kernels ?? {}).sort(([, a], [, b]) => b.ms - a.ms);
  if (kernels.length === 0) return [];
  const total = kernels.reduce((sum, [, time]) => sum + time.ms, 0);
  const lines = [`device time per kernel (profiled, ${total.toFixed(1)} ms in all):`];
  for (const [label, time] of kernels.slice(0, 30)) {
    const share = ((100 * time.ms) / total).toFixed(1).padStart(5);
    lines.push(`  ${share}%  ${time.ms.toFixed(2).padStart(10)} ms  ${String(time.dispatches).padStart(7)} dispatches  ${((1000 * time.ms) / time.dispatches).toFixed(1).padStart(8)} µs each  ${label}`);
  }
  return lines;
}
