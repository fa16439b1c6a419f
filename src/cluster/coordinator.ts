/**
 * The coordinator side of a mesh: it listens for workers (forking them on
 * this machine, or waiting for `tessera worker --join`), refuses joins with
 * a wrong token, assigns ranks, hands out the plan (model, stage layer
 * ranges, every rank's mesh address), and then runs steps: each step goes
 * to every rank and the logits come back from the last stage's tp rank 0.
 * Several steps may be in flight: every rank takes them in the order sent,
 * so with pipeline stages, stage 0 starts step i+1 while stage 1 runs step i
 * (micro-batches of different sequences overlap), and logits come back in
 * order. A worker that dies or fails turns every pending step into a coded
 * error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import { checkExpertParallel } from '../model/moe-stage.js';
import { checkTensorParallel } from '../model/shard-spec.js';
import { decodeControl, encodeControl, type ControlMessage, type Envelope, type RankBackend } from './control-message.js';
import { FramedSocket } from '../parallel/framed-socket.js';
import { meshSize, rankAt, stageLayerRanges, type MeshShape } from '../parallel/mesh.js';
import type { KvLayout, StepRequest } from './rank-runner.js';
import type { MeshAddress } from '../parallel/socket-transport.js';
import { asFloats, type MeshTransportKind } from '../parallel/transport.js';
import type { TraceEvent } from '../core/trace-event.js';
import { writeChromeTrace } from '../profiler/chrome-trace.js';
import type { KvDtype } from '../core/kv-dtype.js';

export interface CoordinatorOptions extends MeshShape {
  modelPath: string;
  tokenizerPath?: string;
  /** Layers per stage (`--pp-layers 10,12`); even when absent. */
  ppLayers?: number[];
  /** Expert parallelism: 1 (default) or tp; checked by checkExpertParallel. */
  ep?: number;
  transport: MeshTransportKind;
  /** Fork the ranks on this machine; when false, wait for workers to join. */
  spawn: boolean;
  /** Where workers join (default 127.0.0.1, any free port). */
  host?: string;
  port?: number;
  /** The join token (default: a random one). */
  token?: string;
  /** Write every rank's step, backend op and message spans here (Chrome trace JSON) at close. */
  trace?: string;
  /** Backend of every rank (default reference, as a one-process Engine), and threads per rank. */
  backend?: RankBackend;
  threads?: number;
  /** Element type of every rank's KV cache (default f32). */
  kvCacheDtype?: KvDtype;
  log?: (line: string) => void;
}

/** Per-step time on the reporting rank: computing vs waiting for messages. */
export interface StepTimings {
  computeMs: number;
  waitMs: number;
}

interface Pending {
  resolve: (value: { logits: Float32Array; timings: StepTimings }) => void;
  reject: (error: Error) => void;
}

export class MeshCoordinator {
  /** Timings of the last step, from the reporting rank. */
  lastTimings: StepTimings = { computeMs: 0, waitMs: 0 };
  /** Sums over every step so far, from the reporting rank (reset freely). */
  totals = { steps: 0, computeMs: 0, waitMs: 0 };
  /** Steps sent and not yet answered, oldest first. */
  private readonly pending: Pending[] = [];
  private failure: Error | undefined;
  private closing = false;
  /** The control connections' reading loops; each ends when its worker goes. */
  private readonly listeners: Promise<void>[];
  /** Spans sent by tracing ranks at shutdown. */
  private readonly traceEvents: TraceEvent[] = [];
  /** Every rank's step-time sums, sent at shutdown (filled by close()). */
  readonly rankStats: Extract<ControlMessage, { type: 'stats' }>[] = [];

  private constructor(
    private readonly links: FramedSocket[],
    private readonly reporter: number,
    private readonly children: ChildProcess[],
    /** Bytes each rank read from the model file while loading. */
    readonly bytesRead: number[],
    readonly loadMs: number,
    /** Pipeline stages of the mesh. */
    readonly stages: number,
    /** Where to write the ranks' Chrome trace at close, when tracing. */
    private readonly tracePath?: string,
  ) {
    this.listeners = links.map((link, rank) => this.listen(link, rank));
  }

  static async start(config: ModelConfig, options: CoordinatorOptions): Promise<MeshCoordinator> {
    const started = performance.now();
    checkTensorParallel(config, options.tp);
    checkExpertParallel(config, options.tp, options.ep ?? 1);
    const layers = stageLayerRanges(config.numLayers, options.pp, options.ppLayers);
    const size = meshSize(options);
    const log = options.log ?? (() => undefined);
    const token = options.token ?? randomBytes(16).toString('hex');
    const server = createServer({ noDelay: true });
    const join = await listen(server, options.host ?? '127.0.0.1', options.port ?? 0);
    const children = options.spawn ? spawnWorkers(size, join, token) : [];
    if (!options.spawn) log(`waiting for ${size} workers: tessera worker --join ${join} --token ${token}`);
    try {
      // Forked ranks joining is routine; remote joins are worth a line each.
      const links = await acceptWorkers(server, size, token, options.spawn ? quietJoins(log) : log, children);
      server.close();
      const ready = await handOutPlan(links, options, layers);
      const reporter = rankAt({ stage: options.pp - 1, tpRank: 0 }, options);
      return new MeshCoordinator(links, reporter, children, ready, performance.now() - started, options.pp, options.trace);
    } catch (error) {
      server.close();
      for (const child of children) child.kill();
      throw error;
    }
  }

  /** Runs one step on every rank; the logits [rows, vocabSize]. `pool`: the driver's KV pool the block table points into. */
  async step(pool: KvLayout, request: StepRequest): Promise<Float32Array> {
    return this.stepBatch(pool, [request]);
  }

  /** One step over several sequences on every rank; the logits of their rows, in request order. */
  async stepBatch(pool: KvLayout, requests: readonly StepRequest[]): Promise<Float32Array> {
    if (this.failure) throw this.failure;
    const result = new Promise<{ logits: Float32Array; timings: StepTimings }>((resolve, reject) => this.pending.push({ resolve, reject }));
    const message: ControlMessage = {
      type: 'step',
      pool: { numBlocks: pool.numBlocks, blockSize: pool.blockSize },
      segments: requests.map((request) => ({
        blockTable: Array.from(request.blockTable),
        rows: request.rows,
        ids: Array.from(request.ids),
        positions: Array.from(request.positions),
      })),
    };
    const frame = encodeControl(message);
    // Written synchronously in call order, so every rank sees steps in the same order.
    const sent = Promise.all(this.links.map((link) => link.send(frame))).catch((error: Error) => this.fail(error));
    const { logits, timings } = await result;
    await sent;
    this.lastTimings = timings;
    this.totals.steps++;
    this.totals.computeMs += timings.computeMs;
    this.totals.waitMs += timings.waitMs;
    return logits;
  }

  /** Stops the workers (they exit) and waits for forked ones to end. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const frame = encodeControl({ type: 'shutdown' });
    await Promise.all(this.links.map((link) => link.send(frame).catch(() => undefined)));
    await Promise.all(this.children.map((child) => exited(child)));
    // Ranks send their step times (and spans, when tracing) before they hang up.
    await Promise.race([Promise.all(this.listeners), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    if (this.tracePath) writeChromeTrace(this.tracePath, this.traceEvents, this.links.length);
    for (const link of this.links) link.close();
  }

  private async listen(link: FramedSocket, rank: number): Promise<void> {
    for (;;) {
      let envelope: Envelope;
      try {
        envelope = decodeControl(await link.receive());
      } catch (error) {
        if (!this.closing) this.fail(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      const { message, body } = envelope;
      if (message.type === 'logits' && rank === this.reporter) {
        // A copy: the frame's buffer may be shared with other messages.
        this.pending.shift()?.resolve({ logits: asFloats(body.slice()), timings: { computeMs: message.computeMs, waitMs: message.waitMs } });
      } else if (message.type === 'stats') {
        this.rankStats[rank] = message;
      } else if (message.type === 'trace') {
        this.traceEvents.push(...message.events);
      } else if (message.type === 'error') {
        this.fail(new TesseraError(message.code, `rank ${rank}: ${message.message}`));
      }
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const pending of this.pending.splice(0)) pending.reject(this.failure);
  }
}

async function handOutPlan(links: FramedSocket[], options: CoordinatorOptions, layers: [number, number][]): Promise<number[]> {
  const size = links.length;
  await Promise.all(links.map((link, rank) => link.send(encodeControl({ type: 'assign', rank, size, transport: options.transport }))));
  const addresses = await Promise.all(links.map(async (link): Promise<MeshAddress> => expect(await next(link), 'listening').address));
  const meshToken = randomBytes(16).toString('hex');
  const plan: ControlMessage = {
    type: 'plan',
    addresses,
    meshToken,
    modelPath: options.modelPath,
    tokenizerPath: options.tokenizerPath,
    tp: options.tp,
    pp: options.pp,
    ep: options.ep ?? 1,
    layers,
    backend: options.backend ?? 'reference',
    trace: options.trace !== undefined,
    threads: options.threads,
    kvCacheDtype: options.kvCacheDtype,
  };
  await Promise.all(links.map((link) => link.send(encodeControl(plan))));
  const ready = await Promise.all(links.map(async (link) => expect(await next(link), 'ready')));
  return ready.map((message) => message.bytesRead);
}

async function next(link: FramedSocket): Promise<ControlMessage> {
  return decodeControl(await link.receive()).message;
}

function expect<T extends ControlMessage['type']>(message: ControlMessage, type: T): Extract<ControlMessage, { type: T }> {
  if (message.type === type) return message as Extract<ControlMessage, { type: T }>;
  if (message.type === 'error') throw new TesseraError(message.code, message.message);
  throw new TesseraError('TESSERA_ERR_INTERNAL', `a worker sent ${message.type} where ${type} was due; are the coordinator and workers the same version?`);
}

function quietJoins(log: (line: string) => void): (line: string) => void {
  return (line) => {
    if (!line.startsWith('worker ')) log(line);
  };
}

function acceptWorkers(server: Server, size: number, token: string, log: (line: string) => void, children: ChildProcess[]): Promise<FramedSocket[]> {
  return new Promise((resolve, reject) => {
    const links: FramedSocket[] = [];
    server.on('connection', (socket: Socket) => {
      const from = socket.remoteAddress ?? 'unknown address';
      const link = new FramedSocket(socket, (why) => new TesseraError('TESSERA_ERR_RANK_LOST', `the worker from ${from} went away (${why}); check its log`));
      const refuse = (why: string): void => {
        log(`refused a worker join from ${from}: ${why}`);
        link.send(encodeControl({ type: 'refused', message: why })).finally(() => link.close());
      };
      link.receive().then((frame) => {
        let hello: ControlMessage | undefined;
        try {
          hello = decodeControl(frame).message;
        } catch {
          hello = undefined;
        }
        if (hello?.type !== 'hello' || hello.token !== token) return refuse('wrong token; pass the --token the coordinator printed');
        if (links.length >= size) return refuse(`the mesh already has its ${size} workers`);
        links.push(link);
        log(`worker ${links.length} of ${size} joined from ${from} (pid ${hello.pid})`);
        if (links.length === size) resolve(links);
      }, () => undefined);
    });
    for (const child of children) {
      child.once('exit', (code) => {
        if (links.length < size) reject(new TesseraError('TESSERA_ERR_RANK_LOST', `a local worker exited (code ${code}) before the mesh was up; its error is printed above`));
      });
    }
  });
}

function spawnWorkers(size: number, join: string, token: string): ChildProcess[] {
  const entry = fileURLToPath(new URL('./worker-main.js', import.meta.url));
  return Array.from({ length: size }, () =>
    spawn(process.execPath, [entry, '--join', join], {
      env: { ...process.env, TESSERA_JOIN_TOKEN: token, TESSERA_WORKER_QUIET: '1' },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
}

function listen(server: Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', (error) =>
      reject(new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `cannot listen for workers on ${host}:${port} (${error.message}); pick another --listen address`)),
    );
    server.listen(port, host, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : port;
      resolve(`${host.includes(':') ? `[${host}]` : host}:${bound}`);
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill(), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
