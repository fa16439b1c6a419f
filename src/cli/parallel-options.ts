/**
 * `--tp N --pp M` and friends on commands that run a model: with either
 * above 1 the model runs on a mesh of worker processes (forked here, or
 * joining with `tessera worker`), with output identical to one process.
 * `--trace FILE` works with or without a mesh: every rank (or the one
 * process, as rank 0) records its steps, backend ops and messages.
 */
import type { Command } from 'commander';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TesseraError } from '../core/errors.js';
import type { TraceEvent } from '../core/trace-event.js';
import { writeChromeTrace } from '../profiler/chrome-trace.js';
import type { Engine } from '../engine/engine.js';
import { openMeshEngine, type MeshEngineOptions } from '../cluster/mesh-engine.js';
import type { BackendChoice } from '../backend/native/select-backend.js';
import type { ControlMessage, RankBackend, RankStepSums } from '../cluster/control-message.js';
import { numberOption, openEngine, parseIdList, type ModelOptions } from './model-options.js';
import type { KvDtype } from '../core/kv-dtype.js';
import type { MeshTransportKind, TransportChoice } from '../parallel/transport.js';
import { loadNativeComm } from '../parallel/native-comm.js';
import { MAX_BURST } from '../cluster/decode-burst.js';

type RankStats = Extract<ControlMessage, { type: 'stats' }>;

export interface ParallelOptions {
  tp: number;
  pp: number;
  ep: number;
  ppLayers?: string;
  transport: TransportChoice;
  listen?: string;
  token?: string;
  rankBackend?: RankBackend;
  rankThreads?: number;
  trace?: string;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  decodeBurst?: number;
}

export function addParallelOptions(command: Command): Command {
  return command
    .option('--tp <n>', 'tensor-parallel degree (ranks per stage)', numberOption('--tp', 1, 1024, true), 1)
    .option('--pp <n>', 'pipeline-parallel degree (stages)', numberOption('--pp', 1, 1024, true), 1)
    .option('--ep <n>', 'expert-parallel degree: MoE experts spread over the ranks of a stage, whose attention splits by heads (--tp defaults to --ep)', numberOption('--ep', 1, 1024, true), 1)
    .option('--pp-layers <counts>', 'layers per stage, e.g. 10,12 (default: even)')
    .option('--transport <kind>', 'link between ranks: auto (shm when the ranks are forked here, else tcp), shm or unix (same host only), tcp', transportOption, 'auto')
    .option('--listen <host:port>', 'wait for `tessera worker --join` on this address instead of forking ranks here')
    .option('--token <t>', 'join token that keys the TLS of the worker links (default: $TESSERA_JOIN_TOKEN, else random and printed with --listen; the flag shows in the process list)')
    .option('--rank-backend <b>', 'backend of each rank: reference, native, webgpu or auto (default: as --backend)', rankBackendOption)
    .option('--rank-threads <n>', 'compute threads per rank (native backend)', numberOption('--rank-threads', 1, 1024, true))
    .option('--heartbeat-interval-ms <ms>', 'how often each worker beats (default 250)', numberOption('--heartbeat-interval-ms', 10, 60_000, true))
    .option('--heartbeat-timeout-ms <ms>', 'silence after which a worker is lost and the mesh re-shards (default 2000)', numberOption('--heartbeat-timeout-ms', 50, 600_000, true))
    .option(
      '--decode-burst <n>',
      'decode steps a one-stage mesh (--tp, no --pp) computes per round trip to the driver when every token is picked on the ranks (no penalties, logit bias, grammar or logprobs): tokens come N at a time',
      numberOption('--decode-burst', 1, MAX_BURST + 1, true),
      1,
    )
    .option(
      '--trace <file>',
      "write a Chrome trace JSON (opens in Perfetto) of every rank's steps, backend ops (tokens, weight dtype, shape and bytes) and messages (bytes, peer, wait vs transfer); one process or a mesh",
      traceOption,
    );
}

/** The mesh the parallel flags ask for (--tp/--pp/--ep/--listen), or undefined for one process. */
export function meshPlanOf(options: ParallelOptions & { tokenizer?: string; backend?: BackendChoice; kvCacheDtype?: KvDtype }): Omit<MeshEngineOptions, 'log'> | undefined {
  // --ep N puts N ranks in each stage: the experts spread over them and attention splits by heads.
  const tp = options.ep > 1 && options.tp === 1 ? options.ep : options.tp;
  if (tp === 1 && options.pp === 1 && options.listen === undefined) return undefined;
  const listen = options.listen === undefined ? undefined : hostAndPort(options.listen);
  return {
    tokenizerPath: options.tokenizer,
    tp,
    pp: options.pp,
    ep: options.ep,
    ppLayers: options.ppLayers === undefined ? undefined : parseIdList(options.ppLayers),
    // auto is resolved per plan by the coordinator (a forked mesh that a remote worker joins moves to tcp).
    transport: options.transport,
    spawn: listen === undefined,
    host: listen?.host,
    port: listen?.port,
    // The environment keeps the token out of the process list (a Kubernetes Secret arrives this way).
    token: tokenOf(options.token),
    backend: options.rankBackend ?? options.backend ?? 'auto',
    // Unset: forked ranks share this machine's cores, per plan (the coordinator divides them again after a re-shard).
    threads: options.rankThreads,
    trace: options.trace,
    kvCacheDtype: options.kvCacheDtype,
    heartbeat: heartbeatOf(options),
    decodeBurst: options.decodeBurst,
  };
}

function tokenOf(flag: string | undefined): string | undefined {
  if (flag !== undefined) process.stderr.write('tessera: warning: --token shows the join token to anyone who can list processes (ps); prefer $TESSERA_JOIN_TOKEN\n');
  return flag ?? process.env.TESSERA_JOIN_TOKEN;
}

function heartbeatOf(options: ParallelOptions): { intervalMs?: number; timeoutMs?: number } | undefined {
  const { heartbeatIntervalMs: intervalMs, heartbeatTimeoutMs: timeoutMs } = options;
  if (intervalMs === undefined && timeoutMs === undefined) return undefined;
  if (intervalMs !== undefined && timeoutMs !== undefined && timeoutMs < 2 * intervalMs) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--heartbeat-timeout-ms ${timeoutMs} must be at least twice --heartbeat-interval-ms ${intervalMs}, or every late beat loses a worker`);
  }
  return { intervalMs, timeoutMs };
}

/** The engine, on one process or on a mesh; `close` stops the mesh's workers, after which `mesh()` says where their step time went. */
export async function openEngineFor(options: ModelOptions & ParallelOptions): Promise<{ engine: Engine; close: () => Promise<void>; mesh?: () => MeshReport }> {
  const plan = meshPlanOf(options);
  if (!plan) return openLocalEngine(options);
  const { engine, coordinator } = await openMeshEngine(options.model, { ...plan, log: (line) => process.stderr.write(`tessera: ${line}\n`) });
  return { engine, close: () => coordinator.close(), mesh: () => meshReport(resolveTransport(plan.transport, plan.spawn), coordinator.rankStats) };
}

/** Per rank, milliseconds per decode step (one token per sequence) and per other step: the per-token breakdown. */
export interface MeshReport {
  transport: MeshTransportKind;
  /** ahead: decode steps answered from a step the rank computed before it was asked, and ones computed ahead but not asked for (src/cluster/run-ahead.ts). */
  ranks: { rank: number; transport: string; decode: StepMeans; other: StepMeans; ahead: { used: number; missed: number } }[];
}

type StepMeans = { steps: number; tokens: number; stepMs: number; computeMs: number; waitMs: number; transferMs: number; eventLoopMs: number };

function meshReport(transport: MeshTransportKind, stats: readonly (RankStats | undefined)[]): MeshReport {
  const means = (sums: RankStepSums): StepMeans => {
    const per = (value: number): number => (sums.steps === 0 ? 0 : value / sums.steps);
    return { steps: sums.steps, tokens: sums.tokens, stepMs: per(sums.stepMs), computeMs: per(sums.computeMs), waitMs: per(sums.waitMs), transferMs: per(sums.transferMs), eventLoopMs: per(sums.eventLoopMs) };
  };
  const ranks = stats.filter((rank): rank is RankStats => rank !== undefined);
  // What the ranks used in the end (a re-plan may have changed it), else what the flags resolve to.
  return { transport: (ranks[0]?.transport as MeshTransportKind | undefined) ?? transport, ranks: ranks.map((rank) => ({ rank: rank.rank, transport: rank.transport, decode: means(rank.decode), other: means(rank.other), ahead: rank.ahead ?? { used: 0, missed: 0 } })) };
}

/** The engine on this process; with --trace, `close` writes its spans as rank 0. */
async function openLocalEngine(options: ModelOptions & ParallelOptions): Promise<{ engine: Engine; close: () => Promise<void> }> {
  const tracePath = options.trace;
  if (tracePath === undefined) return { engine: await openEngine(options), close: async () => undefined };
  const events: TraceEvent[] = [];
  const engine = await openEngine(options, events);
  return { engine, close: async () => writeChromeTrace(tracePath, events, 1) };
}

/** The trace is written when the run ends: a path it cannot be written to is refused before any work. */
function traceOption(value: string): string {
  const path = resolve(value);
  let reason: string | undefined;
  if (existsSync(path) && statSync(path).isDirectory()) reason = 'it is a directory';
  else {
    try {
      accessSync(dirname(path), constants.W_OK);
    } catch (error) {
      reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? `${dirname(path)} does not exist` : `${dirname(path)} is not writable`;
    }
  }
  if (reason) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--trace ${value}: cannot write the trace there (${reason})`);
  return value;
}

function transportOption(value: string): TransportChoice {
  if (value === 'auto' || value === 'shm' || value === 'tcp' || value === 'unix') return value;
  throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--transport must be auto, shm, unix or tcp, got "${value}"`);
}

/**
 * auto: shared memory when every rank is forked on this machine and the
 * addon (which maps the segments) is built, else TCP. Workers that join with
 * --listen may be anywhere, so auto picks TCP for them.
 */
export function resolveTransport(choice: TransportChoice, local: boolean): MeshTransportKind {
  if (choice !== 'auto') return choice;
  return local && loadNativeComm() !== undefined ? 'shm' : 'tcp';
}

function rankBackendOption(value: string): RankBackend {
  if (value === 'reference' || value === 'native' || value === 'webgpu' || value === 'auto') return value;
  throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--rank-backend must be reference, native, webgpu or auto, got "${value}"`);
}

export function hostAndPort(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  const port = Number(text.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `"${text}" is not HOST:PORT; e.g. 0.0.0.0:7070`);
  }
  return { host: text.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port };
}
