/**
 * A worker process: joins a coordinator with its token, takes a rank, opens
 * its mesh connections, loads its shards, then runs steps until told to
 * stop. `tessera worker --join HOST:PORT --token T` and the locally forked
 * ranks of `--tp/--pp` both run this.
 */
import type { Socket } from 'node:net';
import { createBackend } from '../backend/native/select-backend.js';
import { TesseraError, isTesseraError } from '../core/errors.js';
import { openModelFiles } from '../engine/model-files.js';
import { StageModel } from '../model/shard-stage.js';
import { loadStageWeights } from '../model/shard-weights.js';
import { ExpertLoad } from '../model/moe-expert-load.js';
import { loadStageExpertFeedForwards } from '../model/moe-stage.js';
import { CollectiveGroup } from '../parallel/collective-group.js';
import { ExpertGroup } from '../parallel/expert-group.js';
import { Communicator } from '../parallel/collectives.js';
import { decodeControl, encodeControl, type ControlMessage, type Envelope } from './control-message.js';
import { FramedSocket } from '../parallel/framed-socket.js';
import { placeOf, stageRanks } from '../parallel/mesh.js';
import { RankRunner } from './rank-runner.js';
import { dial } from '../parallel/socket-transport.js';
import { RankEndpoint, type RankLinks } from '../parallel/rank-links.js';
import { NativeCollectiveGroup } from '../parallel/native-group.js';
import { StepClock, StepTotals, clockedBackend, type StepBreakdown } from '../parallel/step-clock.js';
import type { TensorParallelGroup } from '../model/tensor-parallel.js';
import { TimedTransport } from '../parallel/timed-transport.js';
import { tracedBackend } from '../backend/traced-backend.js';
import { TRACE_THREADS, epochMicros, type TraceEvent } from '../core/trace-event.js';
import { floatBytes } from '../parallel/transport.js';
import { DEFAULT_KV_DTYPE, parseKvDtype } from '../core/kv-dtype.js';

export interface WorkerOptions {
  /** HOST:PORT of the coordinator. */
  join: string;
  token: string;
  /** Threads of this worker's backend; overrides the coordinator's plan. */
  threads?: number;
  log?: (line: string) => void;
}

export async function runWorker(options: WorkerOptions): Promise<void> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const control = new FramedSocket(await dialCoordinator(options.join), (why) => new TesseraError('TESSERA_ERR_RANK_LOST', `the coordinator at ${options.join} went away (${why}); start the run again`));
  const send = (message: ControlMessage, body?: Uint8Array): Promise<void> => control.send(encodeControl(message, body));
  const next = async (): Promise<Envelope> => decodeControl(await control.receive());
  try {
    await send({ type: 'hello', token: options.token, pid: process.pid });
    const runner = await setUp(control, next, send, options.threads, log);
    await serve(runner.runner, runner.transport, next, send, runner.clock, runner.expertLoad);
  } catch (error) {
    if (!control.closed && isTesseraError(error)) await send({ type: 'error', code: error.code, message: error.message }).catch(() => undefined);
    throw error;
  } finally {
    control.close();
  }
}

async function setUp(
  control: FramedSocket,
  next: () => Promise<Envelope>,
  send: (message: ControlMessage, body?: Uint8Array) => Promise<void>,
  threads: number | undefined,
  log: (line: string) => void,
): Promise<{ runner: RankRunner; transport: TimedTransport; clock: StepClock; expertLoad?: ExpertLoad }> {
  const assigned = (await next()).message;
  if (assigned.type === 'refused') throw new TesseraError('TESSERA_ERR_JOIN_REFUSED', assigned.message);
  if (assigned.type !== 'assign') throw unexpected(assigned);
  const host = assigned.transport === 'tcp' ? control.socket.localAddress ?? '127.0.0.1' : undefined;
  const endpoint = await RankEndpoint.open(assigned.transport, assigned.rank, assigned.size, host);
  await send({ type: 'listening', address: endpoint.address });
  const plan = (await next()).message;
  if (plan.type !== 'plan') throw unexpected(plan);
  const started = performance.now();
  const links = await endpoint.connect(plan.addresses, plan.meshToken);
  const transport = new TimedTransport(links.transport, plan.trace ? [] : undefined);
  const shape = { tp: plan.tp, pp: plan.pp };
  const { stage, tpRank } = placeOf(assigned.rank, shape);
  const [startLayer, endLayer] = plan.layers[stage];
  const files = openModelFiles(plan.modelPath, { tokenizerPath: plan.tokenizerPath });
  try {
    const plain = createBackend(plan.backend, { threads: threads ?? plan.threads });
    const spans = transport.spans ? { events: transport.spans, pid: assigned.rank } : undefined;
    const { group, native } = tensorGroup(links, transport, stageRanks(stage, shape), assigned.rank, spans);
    const clock = new StepClock({ transport, collectives: native });
    // Tracing: every op of this rank is a span beside its step and message spans. Op time is the breakdown's compute.
    const backend = clockedBackend(spans ? tracedBackend(plain, spans) : plain, clock);
    const stagePlan = { tp: plan.tp, tpRank, startLayer, endLayer };
    const weights = loadStageWeights(files.store, files.config, backend, stagePlan);
    // MoE layers: experts whole on every rank (ep 1) or spread over the stage's ranks (ep = tp).
    const experts = (plan.ep ?? 1) > 1 ? new ExpertGroup(new Communicator(transport, stageRanks(stage, shape)), native) : undefined;
    const expertLoad = files.config.moe && plan.trace ? new ExpertLoad(files.config.numLayers) : undefined;
    const feedForwards = files.config.moe ? loadStageExpertFeedForwards(files.store, files.config, backend, stagePlan, experts, expertLoad) : undefined;
    const kvDtype = parseKvDtype(plan.kvCacheDtype ?? DEFAULT_KV_DTYPE, 'the plan\'s kvCacheDtype');
    const runner = new RankRunner(new StageModel(files.config, weights, backend, group, stagePlan, feedForwards), transport, shape, kvDtype);
    const collectives = native ? `native ${links.native?.kind} collectives` : 'collectives over the transport';
    log(`tessera worker: rank ${assigned.rank} of ${assigned.size} (stage ${stage}, tp rank ${tpRank}, layers [${startLayer}, ${endLayer}), ${backend.name} backend, ${kvDtype} KV, ${links.transport.kind} transport, ${collectives})`);
    await send({ type: 'ready', bytesRead: files.store.bytesRead, loadMs: performance.now() - started });
    return { runner, transport, clock, expertLoad };
  } finally {
    files.store.close();
  }
}

async function serve(
  runner: RankRunner,
  transport: TimedTransport,
  next: () => Promise<Envelope>,
  send: (message: ControlMessage, body?: Uint8Array) => Promise<void>,
  clock: StepClock,
  expertLoad?: ExpertLoad,
): Promise<void> {
  // Decode steps (one token per sequence) apart from the rest, for the per-token breakdown.
  const decode = new StepTotals();
  const other = new StepTotals();
  try {
    for (;;) {
      const { message } = await next();
      if (message.type === 'shutdown') {
        await send({ type: 'stats', rank: transport.rank, transport: transport.kind, decode: { steps: decode.steps, tokens: decode.tokens, ...decode.sums }, other: { steps: other.steps, tokens: other.tokens, ...other.sums } });
        if (transport.spans) await send({ type: 'trace', events: transport.spans });
        return;
      }
      if (message.type !== 'step') throw unexpected(message);
      const startedEpoch = epochMicros();
      clock.begin();
      const logits = await runner.stepBatch(
        message.pool,
        message.segments.map((segment) => ({
          blockTable: Int32Array.from(segment.blockTable),
          rows: segment.rows,
          ids: Int32Array.from(segment.ids),
          positions: Int32Array.from(segment.positions),
        })),
      );
      const times = clock.end();
      const rank = transport.rank;
      const tokens = message.segments.reduce((sum, segment) => sum + segment.ids.length, 0);
      (tokens === message.segments.length ? decode : other).add(times, tokens);
      transport.spans?.push({ name: 'step', ph: 'X', ts: startedEpoch, dur: epochMicros() - startedEpoch, pid: rank, tid: TRACE_THREADS.compute, args: { tokens, sequences: message.segments.length, ...rounded(times) } });
      if (transport.spans && expertLoad) transport.spans.push(...expertCounters(expertLoad, rank, startedEpoch));
      if (logits) await send({ type: 'logits', computeMs: times.computeMs, waitMs: times.waitMs, transferMs: times.transferMs, eventLoopMs: times.eventLoopMs }, floatBytes(logits));
    }
  } finally {
    await transport.close();
  }
}

/**
 * The stage's tensor-parallel collectives: native (synchronous, on this
 * thread, over shared memory or the addon's sockets) when the mesh has a
 * native plane, else over the transport.
 */
function tensorGroup(links: RankLinks, transport: TimedTransport, members: number[], rank: number, spans?: { events: TraceEvent[]; pid: number }): { group: TensorParallelGroup; native?: NativeCollectiveGroup } {
  if (!links.native) return { group: new CollectiveGroup(new Communicator(transport, members)) };
  const native = NativeCollectiveGroup.open(links.native.comm, links.native.mesh, members, rank, 0, spans);
  return { group: native, native };
}

/** Breakdown milliseconds to 3 decimals, for trace arguments. */
function rounded(times: StepBreakdown): Record<string, number> {
  return Object.fromEntries(Object.entries(times).map(([key, value]) => [key, Math.round(value * 1000) / 1000]));
}

function unexpected(message: ControlMessage): TesseraError {
  if (message.type === 'error') return new TesseraError(message.code, message.message);
  return new TesseraError('TESSERA_ERR_INTERNAL', `the coordinator sent an unexpected ${message.type} message; are the coordinator and worker the same version?`);
}

function dialCoordinator(join: string): Promise<Socket> {
  const at = join.lastIndexOf(':');
  const host = join.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  const port = Number(join.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--join ${join} is not HOST:PORT; give the address the coordinator printed, e.g. 10.0.0.1:7070`);
  }
  return dial({ kind: 'tcp', host, port }).catch((error: Error) => {
    throw new TesseraError('TESSERA_ERR_RANK_LOST', `cannot reach the coordinator at ${join} (${error.message}); check the address and that it is running`);
  });
}

/** Chrome trace counters: tokens routed so far to each of this rank's experts, one counter track per MoE layer. */
function expertCounters(load: ExpertLoad, rank: number, ts: number): TraceEvent[] {
  const events: TraceEvent[] = [];
  load.snapshot().tokens.forEach((row, layer) => {
    if (row.length === 0) return;
    const args: Record<string, number> = {};
    row.forEach((count, expert) => {
      if (count > 0) args[`expert ${expert}`] = count;
    });
    events.push({ name: `layer ${layer} expert tokens`, ph: 'C', ts, pid: rank, args });
  });
  return events;
}
