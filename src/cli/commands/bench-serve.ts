/** `tessera bench serve`: throughput and latency of the server at several concurrency levels. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem, platform, release } from 'node:os';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { BACKEND_CHOICES, type BackendChoice } from '../../backend/native/select-backend.js';
import { TesseraError } from '../../core/errors.js';
import { launchServer } from '../../serve/launch.js';
import { benchmarkLevel, type LevelResult, type ServeBenchmarkOptions } from '../../serve/serve-benchmark.js';
import { benchResponseFormat } from '../../serve/bench-response-format.js';
import { kvCacheDtypeOption, numberOption, tileCacheOption } from '../model-options.js';
import { addParallelOptions, meshPlanOf, type ParallelOptions } from '../parallel-options.js';
import type { KvDtype } from '../../core/kv-dtype.js';

interface BenchServeOptions extends ParallelOptions {
  model: string;
  tokenizer?: string;
  backend: BackendChoice;
  threads?: number;
  concurrency: string;
  promptLen: number;
  outputLen: number;
  rounds: number;
  maxNumSeqs: number;
  maxBatchTokens: number;
  kvCacheMib: number;
  kvCacheDtype: KvDtype;
  responseFormat?: string;
  out: string;
}

export function registerBenchServeCommand(bench: Command): void {
  const command = bench
    .command('serve')
    .description('start a server in this process and measure output tok/s, TTFT and TPOT at each concurrency')
    .requiredOption('--model <path>', 'model path or synth:PRESET[:DTYPE]')
    .addOption(new Option('--backend <name>', 'compute backend (auto: native when built, else reference; webgpu: the GPU)').choices([...BACKEND_CHOICES]).default('auto'))
    .option('--threads <n>', 'compute threads of the native backend (default: physical cores)', numberOption('--threads', 1, 1024, true))
    .addOption(tileCacheOption())
    .option('--tokenizer <path>', 'tokenizer file for llama2.c checkpoints')
    .option('--concurrency <list>', 'concurrency levels, comma-separated', '1,4,16,64')
    .option('--prompt-len <n>', 'prompt tokens per request', numberOption('--prompt-len', 1, 1e6, true), 32)
    .option('--output-len <n>', 'generated tokens per request', numberOption('--output-len', 1, 1e6, true), 32)
    .option('--rounds <n>', 'requests each client sends one after another', numberOption('--rounds', 1, 1000, true), 2)
    .option('--max-num-seqs <n>', 'running batch size limit of the server', numberOption('--max-num-seqs', 1, 4096, true), 64)
    .option('--max-batch-tokens <n>', 'tokens per engine step', numberOption('--max-batch-tokens', 1, 1e6, true), 512)
    .option('--kv-cache-mib <n>', 'KV cache budget in MiB', numberOption('--kv-cache-mib', 0.01, 1e7), 256)
    .addOption(kvCacheDtypeOption())
    .option('--response-format <spec>', 'also run every level constrained: json_object, json_schema (a records schema), a response_format JSON object or @FILE')
    .option('--out <dir>', 'folder for the JSON result', 'bench/results');
  addParallelOptions(command).action(async (options: BenchServeOptions) => {
      const levels = options.concurrency.split(',').map((part) => Number(part.trim()));
      if (levels.some((level) => !Number.isInteger(level) || level < 1)) {
        throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--concurrency must be a list of positive integers such as 1,4,16,64; got "${options.concurrency}"`);
      }
      const responseFormat = options.responseFormat === undefined ? undefined : benchResponseFormat(options.responseFormat);
      const log = (line: string): void => void process.stderr.write(`${line}\n`);
      const loadBefore = loadavg();
      const mesh = meshPlanOf(options);
      const server = await launchServer({
        model: options.model,
        tokenizerPath: options.tokenizer,
        backend: options.backend,
        threads: options.threads,
        port: 0,
        servedModelName: 'bench',
        core: { maxNumSeqs: options.maxNumSeqs, maxBatchTokens: options.maxBatchTokens, kvCacheMib: options.kvCacheMib, kvCacheDtype: options.kvCacheDtype },
        maxWaiting: 100_000,
        mesh,
        trace: mesh ? undefined : options.trace,
        log,
      });
      try {
        const vocabSize = server.servingModel!.config.vocabSize;
        const base = { url: server.url, model: 'bench', vocabSize, promptLen: options.promptLen, outputLen: options.outputLen, seed: 1 };
        await benchmarkLevel({ ...base, rounds: 1, outputLen: 4, seed: 0 }, 1); // warm-up
        if (responseFormat) await benchmarkLevel({ ...base, rounds: 1, outputLen: 4, seed: 0, responseFormat }, 1);
        const results: LevelResult[] = [];
        const constrained: LevelResult[] = [];
        for (const concurrency of levels) {
          const level = { ...base, rounds: options.rounds, seed: concurrency };
          results.push(await runLevel(level, concurrency, '', log));
          // The same prompts right after, constrained: both halves see the machine in the same state.
          if (responseFormat) constrained.push(await runLevel({ ...level, responseFormat }, concurrency, ' constrained', log));
        }
        const report = {
          benchmark: 'serve',
          date: new Date().toISOString(),
          model: options.model,
          backend: server.servingModel!.host.limits.backend,
          threads: options.threads ?? 'default',
          mesh: mesh ? { tp: mesh.tp, pp: mesh.pp, ep: mesh.ep, rankBackend: mesh.backend, rankThreads: mesh.threads } : undefined,
          options: { promptLen: options.promptLen, outputLen: options.outputLen, rounds: options.rounds, maxNumSeqs: options.maxNumSeqs, maxBatchTokens: options.maxBatchTokens, kvCacheMib: options.kvCacheMib, kvCacheDtype: options.kvCacheDtype },
          machine: machineDescription(loadBefore),
          results,
          ratios: ratiosToSingleStream(results),
          ...(responseFormat ? { responseFormat, constrainedResults: constrained, constrainedOverUnconstrained: constrainedRatios(results, constrained) } : {}),
        };
        mkdirSync(options.out, { recursive: true });
        const file = join(options.out, `serve-${report.date.slice(0, 19).replace(/:/g, '-')}.json`);
        writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
        log(`wrote ${file}`);
        process.stdout.write(`${JSON.stringify(report)}\n`);
      } finally {
        await server.close();
      }
    });
}

async function runLevel(options: ServeBenchmarkOptions, concurrency: number, label: string, log: (line: string) => void): Promise<LevelResult> {
  const result = await benchmarkLevel(options, concurrency);
  log(
    `concurrency ${concurrency}${label}: ${result.outputTokensPerSecond.toFixed(1)} output tok/s, TTFT p50 ${result.ttftMs.p50.toFixed(1)} ms p99 ${result.ttftMs.p99.toFixed(1)} ms, TPOT p50 ${result.tpotMs.p50.toFixed(1)} ms p99 ${result.tpotMs.p99.toFixed(1)} ms`,
  );
  return result;
}

/** Constrained output tok/s over unconstrained, per level. */
function constrainedRatios(plain: LevelResult[], constrained: LevelResult[]): Record<string, number> {
  return Object.fromEntries(constrained.map((result, i) => [`c${result.concurrency}`, +(result.outputTokensPerSecond / plain[i].outputTokensPerSecond).toFixed(3)]));
}

function machineDescription(loadBefore: number[]): Record<string, unknown> {
  const cores = cpus();
  return {
    cpu: cores[0]?.model ?? 'unknown',
    logicalCores: cores.length,
    memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
    freeMemoryGiB: +(freemem() / 2 ** 30).toFixed(1),
    os: `${platform()} ${release()}`,
    node: process.version,
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadavg(),
  };
}

/** Output tok/s of each level over the single-stream level of the same run. */
function ratiosToSingleStream(results: LevelResult[]): Record<string, number> {
  const single = results.find((result) => result.concurrency === 1);
  if (!single) return {};
  return Object.fromEntries(results.map((result) => [`c${result.concurrency}`, +(result.outputTokensPerSecond / single.outputTokensPerSecond).toFixed(2)]));
}
