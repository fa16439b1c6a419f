/**
 * Tessera and llama.cpp side by side on one GGUF file with the same threads:
 * prefill and decode rates, load time, and decode's share of the memory
 * bandwidth measured in the same run. Rounds alternate between the two so
 * the machine's noise falls on both; each figure is the best of its rounds.
 */
import { byteSize } from '../core/dtype.js';
import { NativeBackend } from '../backend/native/native-backend.js';
import { createBackend, type BackendChoice } from '../backend/native/select-backend.js';
import { WebGpuBackend } from '../backend/webgpu/webgpu-backend.js';
import type { AdapterDescription } from '../backend/webgpu/gpu-protocol.js';
import { measureBatchDecode } from './batch-decode.js';
import { Engine } from '../engine/engine.js';
import { matrixShape } from '../format/tensor-store.js';
import { describeMachine, type MachineDescription } from './machine.js';
import { openPeerTimings } from './peer-timing.js';

export interface EngineBenchOptions {
  model: string;
  threads: number;
  backend: BackendChoice;
  peer: boolean;
  flashAttention: boolean;
  rounds: number;
  promptLengths: number[];
  decodeTokens: number;
  /** Batch sizes whose decode throughput is measured too (sequences stepping together). */
  decodeBatches?: number[];
  log: (line: string) => void;
}

export interface SideFigures {
  loadMs: number;
  /** Prompt length → tokens per second. */
  prefill: Record<string, number>;
  decode: number;
  /** model bytes × decode tok/s ÷ measured bandwidth */
  decodeBandwidthFraction: number;
  /** Batch size → generated tok/s of that many sequences decoding together (--decode-batches). */
  batchDecode?: Record<string, number>;
}

export interface DecodeRound {
  tessera: number;
  llamaCpp?: number;
  /** GB/s: before Tessera's decode, between the two decodes, after the peer's. */
  triads: number[];
}

export interface EngineBenchResult {
  kind: 'engine';
  date: string;
  machine: MachineDescription;
  model: { path: string; architecture: string; dtypes: string[]; bytes: number };
  threads: number;
  backend: string;
  /** The tile cache Tessera loaded through (--tile-cache), if any: a warm one makes load a mapping. */
  tileCache: string | null;
  /** The GPU adapter (WebGPU backend), whose read bandwidth is then the limit instead of the triad. */
  device?: AdapterDescription;
  /** WebGPU: where the runs' time went, summed over the benchmark (runs, dispatches, record / round trip / encode / wait ms). */
  gpuTimings?: WebGpuBackend['timings'];
  /** The best STREAM triad of the run (the limit decode fractions use); on WebGPU the device's best read rate. */
  memoryBandwidthGBs: number;
  /** Every triad of the run, in order: one at the start, then one before, between and after each round's decodes. */
  memoryBandwidthRoundsGBs: number[];
  /** Each round's decode tok/s per side, with the triads taken just before and just after it. */
  decodeRounds: DecodeRound[];
  decodeTokens: number;
  flashAttention: boolean;
  tessera: SideFigures;
  llamaCpp?: SideFigures;
  /** Tessera ÷ llama.cpp for each figure (higher is better for Tessera; for load time, lower). */
  ratios?: { prefill: Record<string, number>; decode: number; loadTime: number };
}

export async function runEngineBenchmark(options: EngineBenchOptions): Promise<EngineBenchResult> {
  const machine = describeMachine();
  const backend = createBackend(options.backend, { threads: options.threads });
  // Measured right before and right after every decode, and the best kept as the limit: the shared
  // host's memory speed swings within minutes, and one sample per round caught slow moments (decodes
  // at 110-130% of it). A read-only stream can still pass the triad, which also writes.
  const bandwidths = [measureBandwidth(backend, options.threads)];
  const limit = backend instanceof WebGpuBackend ? `GPU read, ${backend.adapter.description || backend.adapter.device}` : `STREAM triad, ${options.threads} threads`;
  options.log(`memory bandwidth (${limit}): ${bandwidths[0].toFixed(1)} GB/s`);
  const engine = await Engine.open(options.model, { backend });
  const bytes = modelBytes(engine);
  const vocab = engine.config.vocabSize;
  const prompt = (length: number): number[] => Array.from({ length }, (_, i) => 100 + ((i * 7919) % Math.max(1, vocab - 200)));
  const maxPrompt = Math.max(...options.promptLengths);
  const peer = options.peer
    ? await openPeerTimings(options.model, { threads: options.threads, flashAttention: options.flashAttention, contextSize: maxPrompt + options.decodeTokens + 16 })
    : undefined;
  const tessera = emptyFigures(engine.loadMs);
  const llama = peer ? emptyFigures(peer.loadMs) : undefined;
  const decodeRounds: DecodeRound[] = [];
  const triad = (): number => {
    const value = measureBandwidth(backend, options.threads);
    bandwidths.push(value);
    return value;
  };
  try {
    for (let round = 0; round < options.rounds; round++) {
      for (const length of options.promptLengths) {
        const ours = (await engine.complete({ promptIds: prompt(length), maxTokens: 1, ignoreEos: true })).timings.prefillTokensPerSecond;
        keepBest(tessera.prefill, String(length), ours);
        if (peer && llama) keepBest(llama.prefill, String(length), await peer.prefill(prompt(length)));
      }
      const decodePrompt = prompt(16);
      const triads = [triad()];
      const ours = (await engine.complete({ promptIds: decodePrompt, maxTokens: options.decodeTokens + 1, ignoreEos: true })).timings.decodeTokensPerSecond;
      triads.push(triad());
      const theirs = peer ? await peer.decode(decodePrompt, options.decodeTokens) : undefined;
      if (theirs !== undefined) triads.push(triad());
      decodeRounds.push({ tessera: ours, llamaCpp: theirs, triads });
      tessera.decode = Math.max(tessera.decode, ours);
      if (llama && theirs !== undefined) llama.decode = Math.max(llama.decode, theirs);
      options.log(
        `round ${round + 1}/${options.rounds}: triads ${triads.map((value) => value.toFixed(1)).join(' / ')} GB/s, tessera decode ${ours.toFixed(2)} tok/s${theirs !== undefined ? `, llama.cpp ${theirs.toFixed(2)} tok/s` : ''}`,
      );
    }
    for (const size of options.decodeBatches ?? []) {
      const rate = await measureBatchDecode(engine, size, 128, Math.min(options.decodeTokens, 32));
      (tessera.batchDecode ??= {})[String(size)] = rate;
      options.log(`batch ${size}: ${rate.toFixed(1)} generated tok/s`);
    }
  } finally {
    await peer?.close();
  }
  const bandwidth = Math.max(...bandwidths);
  for (const side of [tessera, llama]) if (side) side.decodeBandwidthFraction = (bytes * side.decode) / (bandwidth * 1e9);
  const info = engine.files.store.list();
  return {
    kind: 'engine',
    date: new Date().toISOString(),
    machine,
    model: { path: options.model, architecture: engine.config.architecture, dtypes: [...new Set(info.map((t) => t.dtype))], bytes },
    threads: options.threads,
    backend: backend.name,
    device: backend instanceof WebGpuBackend ? backend.adapter : undefined,
    gpuTimings: backend instanceof WebGpuBackend ? { ...backend.timings } : undefined,
    tileCache: backend instanceof NativeBackend ? (backend.tileCache?.directory ?? null) : null,
    memoryBandwidthGBs: bandwidth,
    memoryBandwidthRoundsGBs: bandwidths,
    decodeRounds,
    decodeTokens: options.decodeTokens,
    flashAttention: options.flashAttention,
    tessera,
    llamaCpp: llama,
    ratios: llama ? ratiosOf(tessera, llama) : undefined,
  };
}

function emptyFigures(loadMs: number): SideFigures {
  return { loadMs, prefill: {}, decode: 0, decodeBandwidthFraction: 0 };
}

function keepBest(figures: Record<string, number>, key: string, value: number): void {
  figures[key] = Math.max(figures[key] ?? 0, value);
}

function ratiosOf(tessera: SideFigures, llama: SideFigures): NonNullable<EngineBenchResult['ratios']> {
  const prefill: Record<string, number> = {};
  for (const key of Object.keys(tessera.prefill)) prefill[key] = tessera.prefill[key] / llama.prefill[key];
  return { prefill, decode: tessera.decode / llama.decode, loadTime: tessera.loadMs / llama.loadMs };
}

/** Bytes of the weights a decode step reads: all but an untied embedding table, of which it reads one row. */
function modelBytes(engine: Engine): number {
  const tensors = engine.files.store.list();
  const untied = tensors.some((info) => info.name === 'output.weight');
  return tensors.reduce((sum, info) => {
    if (untied && info.name === 'token_embd.weight') return sum;
    const { rows, cols } = matrixShape(info.shape);
    return sum + byteSize(info.dtype, rows * cols);
  }, 0);
}

/** GB/s from the native addon's STREAM triad (on WebGPU, the device's read rate); NaN when the addon is not built. */
function measureBandwidth(backend: unknown, threads: number): number {
  if (backend instanceof WebGpuBackend) return backend.measureReadBandwidth();
  if (backend instanceof NativeBackend) return backend.measureMemoryBandwidth();
  return NativeBackend.describeCpu() ? new NativeBackend({ threads }).measureMemoryBandwidth() : Number.NaN;
}

