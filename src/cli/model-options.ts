/** Options every model-using command shares, and opening the engine from them. */
import { Option, type Command } from 'commander';
import { BACKEND_CHOICES, createBackend, type BackendChoice } from '../backend/native/select-backend.js';
import { TesseraError } from '../core/errors.js';
import type { TraceEvent } from '../core/trace-event.js';
import { Engine } from '../engine/engine.js';
import { loadProgressBar } from './load-progress.js';
import { openTracedEngine } from '../engine/traced-engine.js';
import { DEFAULT_KV_DTYPE, KV_DTYPES, parseKvDtype, type KvDtype } from '../core/kv-dtype.js';

export interface ModelOptions {
  model: string;
  tokenizer?: string;
  verbose?: boolean;
  backend?: BackendChoice;
  threads?: number;
  kvCacheDtype?: KvDtype;
}

export function addModelOptions(command: Command): Command {
  return command
    .requiredOption('--model <path>', 'GGUF file, Hugging Face model directory, or llama2.c .bin checkpoint')
    .option('--tokenizer <path>', 'tokenizer file for llama2.c checkpoints (default: tokenizer.bin or tok*.bin beside the model)')
    .option('--verbose', 'print stack traces on errors');
}

/** --backend and --threads, for commands that compute. */
export function addComputeOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--backend <name>', 'compute backend (auto: native when built, else reference; webgpu: the GPU)').choices([...BACKEND_CHOICES]).default('auto'),
    )
    .option('--threads <n>', 'compute threads of the native backend (default: physical cores)', numberOption('--threads', 1, 1024, true))
    .addOption(kvCacheDtypeOption())
    .addOption(tileCacheOption());
}

/**
 * --tile-cache DIR|off: the native backend saves packed tiles there and maps
 * them on later loads (backend/native/tile-cache.ts). It is handed on as
 * TESSERA_TILE_CACHE, which every backend reads, so the serve engine worker
 * and forked ranks, which inherit the environment, use it too.
 */
export function tileCacheOption(): Option {
  return new Option(
    '--tile-cache <dir>',
    'folder for packed weight tiles: the first load saves them, later loads map them (fast load, shared page cache); "off" for none (default: $TESSERA_TILE_CACHE, else none)',
  ).argParser((value: string) => {
    if (value === 'off') delete process.env.TESSERA_TILE_CACHE;
    else process.env.TESSERA_TILE_CACHE = value;
    return value;
  });
}

/** --kv-cache-dtype (vLLM's name): the KV cache's element type; a bad value is a coded error naming the choices. */
export function kvCacheDtypeOption(): Option {
  return new Option('--kv-cache-dtype <dtype>', `KV cache element type: ${KV_DTYPES.join(' or ')} (f16: half the memory, twice the blocks per --kv-cache-mib)`)
    .argParser((value: string) => parseKvDtype(value))
    .default(DEFAULT_KV_DTYPE);
}

/** The engine on this process; with `trace`, every step and backend op is recorded there as a span. */
export async function openEngine(options: ModelOptions, trace?: TraceEvent[]): Promise<Engine> {
  const progress = loadProgressBar('loading');
  try {
    const backend = createBackend(options.backend ?? 'auto', { threads: options.threads });
    const engineOptions = { backend, tokenizerPath: options.tokenizer, onProgress: progress.onProgress, kvCacheDtype: options.kvCacheDtype };
    // Untraced runs compute on the plain backend: tracing costs nothing when off.
    return await (trace ? openTracedEngine(options.model, engineOptions, trace) : Engine.open(options.model, engineOptions));
  } finally {
    progress.stop();
  }
}

/** "1,2,3" → [1, 2, 3] */
export function parseIdList(text: string): number[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const id = Number(part);
      if (!Number.isInteger(id) || id < 0) {
        throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `"${part}" is not a token id; pass ids as 1,2,3`);
      }
      return id;
    });
}

/** A commander argument parser for numbers within [min, max]. */
export function numberOption(name: string, min: number, max: number, integer = false): (value: string) => number {
  return (value: string) => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max || (integer && !Number.isInteger(parsed))) {
      const kind = integer ? 'an integer' : 'a number';
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `${name} must be ${kind} in [${min}, ${max}], got "${value}"`);
    }
    return parsed;
  };
}
