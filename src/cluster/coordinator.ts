/**
 * The coordinator of a mesh: the edge where cluster events come from and
 * plans are carried out (DESIGN §9). Workers join (forked here, or
 * `tessera worker --join`; the join listener stays open, so a running mesh
 * can grow); heartbeats track them (membership.ts). Every change is an event
 * folded into the ClusterState; after each, `reconcile` asks the pure
 * `replan` whether the mesh should move, and if so rolls the new plan out
 * (rollout.ts). A lost rank is not the end: the survivors abandon its
 * generation (an abort through their heartbeat threads), its steps fail with
 * TESSERA_ERR_RANK_LOST, and a new plan over the healthy nodes follows.
 * Callers (MeshTransformer) wait in `whenServing` and re-run their work on
 * the new generation. A join or an admin re-shard waits for the steps in
 * flight, then moves the mesh the same way.
 *
 * Steps, KV reads and KV writes, and the ranks' answers, are the traffic
 * of mesh-traffic.ts, which goes only to a plan that serves.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError, type ErrorCode } from '../core/errors.js';
import { FramedSocket } from '../parallel/framed-socket.js';
import { apply, type ClusterEvent, type PlanReason } from './cluster-events.js';
import { initialState, nodeId, nodeOf, type ClusterState, type MeshPreference, type NodeId, type Plan } from './cluster-state.js';
import { clusterView, type ClusterView } from './cluster-view.js';
import { PROTOCOL_VERSION, type ControlMessage, type Envelope, type HeartbeatTiming, type KvReadRun } from './control-message.js';
import type { FrameLimitOptions } from '../parallel/frame-limits.js';
import { JoinListener, type Hello } from './join-listener.js';
import { DEFAULT_HEARTBEAT, Membership } from './membership.js';
import { meshFootprint, type ModelFootprint } from './model-footprint.js';
import { NodeLink } from './node-link.js';
import { checkPinnedShape, place, replan } from './placement.js';
import type { KvLayout, StepRequest } from './rank-runner.js';
import { ReshardLog, type RankLoad } from './reshard-log.js';
import { planModel, planTransport, rollOut } from './rollout.js';
import { sharedRowsOverlap } from '../model/shard-spec.js';
import type { CoordinatorOptions } from './coordinator-options.js';
import type { ForkedRanks } from './run-ahead.js';
import { earlyExit, exited, spawnWorkers } from './local-workers.js';
import type { KvRankRows } from './kv-read-pipe.js';
import { MeshTraffic } from './mesh-traffic.js';
import type { PickedRows } from '../engine/token-pick.js';
import { StateSignal } from './state-signal.js';
import { modelIdentityOf } from './model-identity.js';
import { MeshTrace, type RankStats } from './mesh-trace.js';

export type { StepTimings } from './step-pipe.js';
export type { CoordinatorOptions } from './coordinator-options.js';

/** What made the coordinator re-plan, kept until the plan is chosen. */
interface Cause {
  reason: PlanReason;
  decidedAt: number;
  silentMs?: number;
}

export class MeshCoordinator {
  /** Every event applied, in order, with its time (epoch ms): replaying it gives `state`. */
  readonly history: { atMs: number; event: ClusterEvent }[] = [];
  readonly reshards: ReshardLog;
  readonly heartbeat: HeartbeatTiming;
  private state: ClusterState;
  private readonly links = new Map<NodeId, NodeLink>();
  private readonly children: ChildProcess[] = [];
  private readonly traffic: MeshTraffic;
  private readonly membership: Membership;
  private joins: JoinListener | undefined;
  private rolling: Promise<void> | undefined;
  private reshardWanted = false;
  private cause: Cause | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private readonly changed = new StateSignal();
  private closing = false;
  private nextNode = 1;
  private lastLoads: RankLoad[] = [];
  private readonly startedAt = performance.now();
  private firstReadyMs = 0;
  private readonly trace: MeshTrace;
  /** Set while the mesh re-shards after losing a worker (what /ready reports); cleared when a plan serves. */
  private recovering: TesseraError | undefined;
  /** A rank that could not load the first plan: the start fails with it. */
  private startFailure: TesseraError | undefined;
  private readonly log: (line: string) => void;
  /** Sent in every plan: ranks refuse a model that is not this one. */
  private modelId = '';
  /** Sent in every plan: the shared-rows overlap of a tp 2 pair (TESSERA_TP_SHARE, read and checked once, here). */
  private readonly rowShare = sharedRowsOverlap();

  private constructor(
    private readonly model: ModelFootprint,
    private readonly options: CoordinatorOptions,
    vocabSize: number,
    headDim: number,
  ) {
    this.log = options.log ?? (() => undefined);
    // Field by field: a flag left unset arrives as undefined, which a spread would copy over the default.
    this.heartbeat = { intervalMs: options.heartbeat?.intervalMs ?? DEFAULT_HEARTBEAT.intervalMs, timeoutMs: options.heartbeat?.timeoutMs ?? DEFAULT_HEARTBEAT.timeoutMs };
    const ep = options.ep ?? 1;
    this.state = initialState({ tp: options.tp, pp: options.pp, ep, pinned: false, ppLayers: options.ppLayers });
    this.trace = new MeshTrace(options.trace);
    this.reshards = new ReshardLog(this.trace.events, options.onReshard);
    const route = { serving: (generation: number) => (this.isServing() && generation === this.state.generation ? this.state.plan : undefined), link: (id: NodeId) => this.links.get(id) };
    this.traffic = new MeshTraffic(route, vocabSize, headDim, this.trace, this.reshards);
    this.membership = new Membership(this.heartbeat, {
      missed: (id, silentMs) => this.dispatch({ type: 'HeartbeatMissed', id, silentMs }),
      resumed: (id) => this.dispatch({ type: 'HeartbeatResumed', id }),
      lost: (id, reason, silentMs) => this.lose(id, reason, silentMs),
    });
  }

  static async start(config: ModelConfig, options: CoordinatorOptions): Promise<MeshCoordinator> {
    const coordinator = new MeshCoordinator(meshFootprint(config, options), options, config.vocabSize, config.headDim);
    try {
      await coordinator.open();
      return coordinator;
    } catch (error) {
      await coordinator.close();
      throw error;
    }
  }

  /** HOST:PORT where workers join (a running mesh too: it grows). */
  get joinAddress(): string {
    return this.joins?.address ?? '';
  }

  get generation(): number {
    return this.state.generation;
  }

  /** Pipeline stages of the current plan. */
  get stages(): number {
    return this.state.plan?.pp ?? this.options.pp;
  }

  /** The ranks this coordinator forks on its machine (run-ahead.ts runAheadWanted), or undefined when workers join. */
  get forkedRanks(): ForkedRanks | undefined {
    if (!this.options.spawn) return undefined;
    const plan = this.state.plan;
    return { ranks: plan ? plan.tp * plan.pp : this.options.tp * this.options.pp, threadsPerRank: this.options.threads ?? 0 };
  }

  /** Bytes each rank of the current plan read from the model file for it. */
  get bytesRead(): number[] {
    return this.lastLoads.map((load) => load.bytesRead);
  }

  /** From start until the first plan served. */
  get loadMs(): number {
    return this.firstReadyMs;
  }

  get cluster(): ClusterState {
    return this.state;
  }

  describe(): ClusterView {
    return clusterView(this.state, this.heartbeat, this.reshards.records, (id) => this.trace.clocks.offset(id));
  }

  /** Each rank's step-time sums (by its rank in the last plan it ran), sent as it shuts down (filled by close()). */
  get rankStats(): RankStats[] {
    return this.trace.rankStats;
  }

  /**
   * Why the mesh cannot step now, or undefined while it can (or is only
   * moving to a new plan because a worker joined or an admin asked): after a
   * lost worker, until the re-shard serves; TESSERA_ERR_NO_PLACEMENT while no
   * layout of the remaining workers fits. /ready says 503 with its code.
   */
  get lost(): Error | undefined {
    if (this.state.phase === 'refused') return new TesseraError(this.state.refusal?.code ?? 'TESSERA_ERR_NO_PLACEMENT', this.state.refusal?.message ?? 'the model fits on no layout of the workers');
    return this.state.phase === 'serving' ? undefined : this.recovering;
  }

  /** Runs one step on every rank; the logits [rows, vocabSize]. `pool`: the driver's KV pool the block table points into. */
  async step(pool: KvLayout, request: StepRequest): Promise<Float32Array> {
    return this.stepBatch(pool, [request]);
  }

  /**
   * One step over several sequences on every rank of `generation` (default:
   * the current one); the logits of their rows, in request order. Fails with
   * TESSERA_ERR_RANK_LOST when that generation is not (or no longer) serving.
   */
  async stepBatch(pool: KvLayout, requests: readonly StepRequest[], generation = this.state.generation): Promise<Float32Array> {
    return (await this.stepRows(pool, requests, generation)).logits;
  }

  /**
   * stepBatch whose requests may carry picks: the reporting rank returns an
   * id for each picked row (token-pick.ts) and the logits of the others.
   */
  async stepRows(pool: KvLayout, requests: readonly StepRequest[], generation = this.state.generation): Promise<PickedRows> {
    return this.traffic.stepRows(pool, requests, generation);
  }

  /**
   * Every rank's KV rows of `runs` (positions by block table in `pool`), read
   * after the steps sent before: one answer per rank, naming its layers and
   * heads. Fails as a step does when `generation` stops serving.
   */
  async readKv(pool: KvLayout, runs: readonly KvReadRun[], generation = this.state.generation): Promise<KvRankRows[]> {
    return this.traffic.readKv(pool, runs, generation);
  }

  /**
   * Rows another replica computed, to the ranks of the stage holding `write.layer`
   * (each writes its own heads), in order with the steps: a step sent after this
   * reads them. No answer; false when `generation` no longer serves (the rows are gone with it).
   */
  writeKv(write: Omit<Extract<ControlMessage, { type: 'kv-write' }>, 'type' | 'generation'>, body: Uint8Array, generation = this.state.generation): boolean {
    return this.traffic.writeKv(write, body, generation);
  }

  /**
   * Waits until a plan serves and no re-shard is pending; its generation.
   * After a loss this is the recovery; it fails with TESSERA_ERR_RANK_LOST
   * when none comes within `recoveryWaitMs`.
   */
  async whenServing(): Promise<number> {
    const deadline = performance.now() + (this.options.recoveryWaitMs ?? 60_000);
    while (!this.isServing()) {
      const left = deadline - performance.now();
      if (this.closing || left <= 0) {
        const why = this.state.refusal?.message ?? `${this.state.nodes.length} healthy workers, waiting for a plan`;
        throw new TesseraError('TESSERA_ERR_RANK_LOST', `the mesh lost a worker and did not recover${this.closing ? ' before it closed' : ` within ${Math.round((this.options.recoveryWaitMs ?? 60_000) / 1000)} s`} (${why}); add workers and retry`);
      }
      await this.changed.next(left);
    }
    return this.state.generation;
  }

  /**
   * Moves the mesh to `shape` (pinned: kept while enough nodes are healthy),
   * or back to automatic placement; resolves once the new plan serves.
   * Refuses with TESSERA_ERR_NO_PLACEMENT a shape the healthy nodes cannot hold.
   */
  async reshard(shape: { tp: number; pp: number } | 'auto'): Promise<ClusterView> {
    const current = this.state.preference;
    const preference: MeshPreference = shape === 'auto' ? { ...current, pinned: false } : { ...current, tp: shape.tp, pp: shape.pp, pinned: true, ppLayers: undefined };
    const healthy = this.state.nodes.filter((node) => node.health === 'healthy');
    checkPinnedShape(this.model, preference, healthy.length);
    place(healthy, this.model, preference, this.state.plan);
    this.cause = { reason: 'admin', decidedAt: Date.now() };
    this.dispatch({ type: 'PreferenceSet', preference });
    this.schedule();
    await this.whenServing();
    return this.describe();
  }

  /** Stops the workers (they exit) and waits for forked ones to end. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.reconcileTimer);
    // Whatever waits on the mesh (steps, a rollout) ends now.
    const closed = new TesseraError('TESSERA_ERR_RANK_LOST', 'the mesh was closed');
    this.traffic.failGeneration(Number.MAX_SAFE_INTEGER, closed);
    for (const link of this.links.values()) link.failGeneration(this.state.generation, closed);
    this.notify();
    await this.rolling?.catch(() => undefined);
    const reads = [...this.links.values()].map((link) => link.closed);
    await Promise.all([...this.links.values()].map((link) => link.send({ type: 'shutdown' }).catch(() => undefined)));
    // Ranks send their step times (and spans, when tracing) before they hang up; a busy machine may take a while, so wait for them before ending any.
    await Promise.race([Promise.all(reads), new Promise((resolve) => setTimeout(resolve, this.options.trace ? 20_000 : 5_000).unref())]);
    // Only now: a rank whose heartbeat thread was still connecting (a run of one step ends within ~100 ms of its plan)
    // found the listener closed, took the coordinator for lost and quit without its stats and spans. Joins are refused
    // meanwhile (closing).
    this.joins?.close();
    await Promise.all(this.children.map((child) => exited(child)));
    this.trace.write();
    this.membership.stop();
    for (const link of this.links.values()) link.close();
  }

  private async open(): Promise<void> {
    this.modelId = this.options.modelId ?? modelIdentityOf(this.options.modelPath, this.options.tokenizerPath);
    const token = this.options.token ?? randomBytes(16).toString('hex');
    // Forked ranks joining is routine; remote joins are worth a line each.
    const joinLog = this.options.spawn ? () => undefined : this.log;
    this.joins = await JoinListener.open(
      this.options.host ?? '127.0.0.1',
      this.options.port ?? 0,
      token,
      {
        control: (link, hello, from) => this.join(link, hello, from, joinLog),
        heartbeat: (link, id) => {
          link.limit(this.membership.frameLimits);
          this.membership.attach(nodeId(id), link);
        },
      },
      this.log,
    );
    const size = this.options.tp * this.options.pp;
    if (this.options.spawn) this.children.push(...spawnWorkers(size, this.joins.address, token));
    else this.log(`waiting for ${size} workers: tessera worker --join ${this.joins.address} --token ${token}`);
    await Promise.race([this.firstPlan(), ...(this.children.length > 0 ? [earlyExit(this.children)] : [])]);
    // Settled: the reconcile that follows every rollout has run, so a step may go at once.
    await this.whenServing();
    this.firstReadyMs = performance.now() - this.startedAt;
  }

  /** The first plan serving; a model that fits nowhere fails the start. */
  private async firstPlan(): Promise<void> {
    while (this.state.phase !== 'serving' || this.rolling) {
      if (this.startFailure) throw this.startFailure;
      if (this.state.phase === 'refused') throw new TesseraError(this.state.refusal?.code ?? 'TESSERA_ERR_NO_PLACEMENT', this.state.refusal?.message ?? 'no plan fits');
      if (this.closing) throw new TesseraError('TESSERA_ERR_RANK_LOST', 'the mesh was closed before it came up');
      await this.changed.next();
    }
  }

  private join(control: FramedSocket, hello: Hello, from: string, log: (line: string) => void): void {
    if (this.closing) return control.close();
    const id = nodeId(`n${this.nextNode++}`);
    control.limit(this.controlLimits());
    const child = this.children.find((candidate) => candidate.pid === hello.pid && from.includes('127.0.0.1'));
    const link = new NodeLink(id, control, child);
    this.links.set(id, link);
    this.membership.track(id);
    const node = { id, hardware: hello.hardware, health: 'healthy' as const, pid: hello.pid, address: from, local: child !== undefined, joinedAtMs: Date.now(), bytesHeld: 0 };
    log(`worker ${id} joined from ${from} (pid ${hello.pid}, ${(hello.hardware.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${hello.hardware.cores} cores, ${hello.hardware.matmulGflops.toFixed(1)} GFLOP/s)`);
    void link.send({ type: 'welcome', protocol: PROTOCOL_VERSION, nodeId: id, heartbeat: this.heartbeat }).catch(() => undefined);
    if (this.state.phase === 'serving') this.cause ??= { reason: 'joined', decidedAt: Date.now() };
    this.dispatch({ type: 'NodeJoined', node });
    void link.read((envelope) => this.receive(id, envelope)).then((why) => this.lose(id, `its control connection closed (${why})`, 0));
    this.schedule();
  }

  /**
   * What a worker may send on its control connection: logits as large as
   * the steps in flight expect (checked from the frame's length before it is
   * stored), else 256 MiB (a tracing rank's spans), at a rate far above any
   * real step rate.
   */
  private controlLimits(): FrameLimitOptions {
    return { maxFrameBytes: () => Math.max(256 * 2 ** 20, 64 * 1024 + this.traffic.largestLogitBytes), perSecond: 20_000 };
  }

  private receive(id: NodeId, envelope: Envelope): void {
    const violation = this.traffic.check(envelope);
    if (violation) {
      this.log(`worker ${id} broke the protocol: ${violation.code}: ${violation.message}; dropping it`);
      return this.lose(id, `it broke the protocol (${violation.code})`, 0);
    }
    const { message } = envelope;
    if (this.traffic.answer(envelope)) {
      return;
    } else if (message.type === 'rank-failed') {
      this.rankFailed(id, message.generation, message.id, message.code, message.message);
    } else if (this.trace.receive(id, message)) {
      return;
    } else if (message.type === 'error') {
      this.log(`worker ${id}: ${message.code}: ${message.message}`);
    }
  }

  /** A node is gone: out of the membership, its process (when forked here) killed, its generation abandoned. */
  private lose(id: NodeId, reason: string, silentMs: number): void {
    const node = nodeOf(this.state, id);
    if (!node || this.closing) return;
    const plan = this.state.plan;
    const ranRank = plan !== undefined && plan.ranks.includes(id) && (this.state.phase === 'serving' || this.state.phase === 'loading');
    this.log(`worker ${id} (pid ${node.pid}) lost: ${reason}${ranRank ? '; re-sharding over the others' : ''}`);
    if (ranRank) this.cause ??= { reason: 'lost', decidedAt: Date.now(), silentMs };
    this.dispatch({ type: 'NodeLost', id, reason });
    this.membership.forget(id);
    const link = this.links.get(id);
    this.links.delete(id);
    link?.close();
    // A stopped or partitioned local process would come back later holding memory: end it.
    link?.child?.kill('SIGKILL');
    if (ranRank) this.abandon(plan, new TesseraError('TESSERA_ERR_RANK_LOST', `rank ${plan.ranks.indexOf(id)} (worker ${id}) was lost: ${reason}`));
    this.schedule();
  }

  /** A rank says it cannot go on with `generation`: that step fails (unless the cause was a lost peer), and the mesh is rebuilt. */
  private rankFailed(id: NodeId, generation: number, step: number, code: ErrorCode, message: string): void {
    const plan = this.state.plan;
    if (!plan || generation !== this.state.generation || this.state.phase === 'assembling') return;
    const error = new TesseraError(code, `rank ${plan.ranks.indexOf(id)} failed generation ${generation}: ${message}`);
    if (this.state.phase === 'loading' && code !== 'TESSERA_ERR_RANK_LOST') return this.cannotLoad(id, error);
    // A compute failure is that step's own: it fails; steps that were merely cut off run again on the next plan.
    if (step >= 0 && code !== 'TESSERA_ERR_RANK_LOST') this.traffic.refuse(step, error);
    this.cause ??= { reason: 'broken', decidedAt: Date.now() };
    this.abandon(plan, new TesseraError('TESSERA_ERR_RANK_LOST', `generation ${generation} broke: ${error.message}`));
    this.dispatch({ type: 'MeshBroke', generation, reason: error.message });
    // A peer's loss usually explains a cut-off rank; give the heartbeat a beat to report it before re-planning.
    this.schedule(code === 'TESSERA_ERR_RANK_LOST' ? this.heartbeat.intervalMs : 0);
  }

  /**
   * A node failed to set up its rank (the model is missing there, a bad
   * file): before the mesh ever served, the start fails with that error;
   * later, the node is dropped so the next plan does not try it again.
   */
  private cannotLoad(id: NodeId, error: TesseraError): void {
    if (this.firstReadyMs === 0) {
      this.startFailure = error;
      this.notify();
      return;
    }
    this.lose(id, `it cannot load its shards (${error.message})`, 0);
  }

  /** The survivors of `plan` stop waiting on each other, and its steps and set-up fail. */
  private abandon(plan: Plan, error: Error): void {
    this.recovering = new TesseraError('TESSERA_ERR_RANK_LOST', `the mesh lost a worker and is re-sharding (${error.message})`);
    this.membership.abort(plan.ranks, plan.generation);
    this.traffic.failGeneration(plan.generation, error);
    for (const link of this.links.values()) link.failGeneration(plan.generation, error);
  }

  private dispatch(event: ClusterEvent): void {
    this.state = apply(this.state, event);
    this.history.push({ atMs: Date.now(), event });
    this.notify();
  }

  private notify(): void {
    this.changed.fire();
  }

  private isServing(): boolean {
    // A pending reconcile may move the mesh (a join, an admin call): steps wait for its answer.
    return this.state.phase === 'serving' && !this.rolling && !this.reshardWanted && !this.reconcileTimer && !this.closing;
  }

  private schedule(delayMs = 0): void {
    if (this.closing || this.reconcileTimer) return;
    this.reconcileTimer = setTimeout(() => {
      this.reconcileTimer = undefined;
      this.reconcile();
    }, delayMs);
  }

  /** Asks placement whether the mesh should move, and moves it between steps. */
  private reconcile(): void {
    if (this.closing || this.rolling) return;
    let plan: Plan | undefined;
    try {
      plan = replan(this.state, this.model);
    } catch (error) {
      const { code, message } = error as TesseraError;
      if (this.state.refusal?.message !== message) this.log(`cannot place the model: ${message}`);
      this.dispatch({ type: 'PlacementRefused', code: code ?? 'TESSERA_ERR_NO_PLACEMENT', message });
      return;
    }
    if (!plan) {
      this.reshardWanted = false;
      this.notify();
      return;
    }
    if (this.state.phase === 'serving' && this.traffic.size > 0) {
      // Steps in flight finish on the old plan; none starts until the new one serves.
      this.reshardWanted = true;
      this.traffic.whenIdle(() => this.schedule());
      return;
    }
    this.reshardWanted = false;
    const cause = this.cause ?? { reason: this.state.plan ? 'joined' : 'start', decidedAt: Date.now() };
    this.cause = undefined;
    this.rolling = this.rollout(plan, cause).finally(() => {
      this.rolling = undefined;
      this.notify();
      this.schedule();
    });
  }

  private async rollout(plan: Plan, cause: Cause): Promise<void> {
    const previous = this.state.plan;
    this.dispatch({ type: 'PlanChosen', plan, reason: cause.reason });
    this.trace.planned(plan.ranks);
    const record = this.reshards.begin(plan, cause.reason, cause.decidedAt, cause.silentMs);
    for (const id of previous?.ranks ?? []) {
      const link = this.links.get(id);
      if (plan.ranks.includes(id) || !link) continue;
      void link.send({ type: 'release', generation: plan.generation }).catch(() => undefined);
      this.dispatch({ type: 'NodeReleased', id });
    }
    try {
      const loads = await rollOut(plan, this.links, planModel(this.options, plan, this.modelId, this.rowShare), planTransport(this.options.transport, plan, this.links));
      if (this.state.generation !== plan.generation) return;
      this.lastLoads = loads;
      for (const load of loads) this.dispatch({ type: 'ShardLoaded', id: load.node as NodeId, generation: plan.generation, bytesRead: load.bytesRead, bytesHeld: load.bytesHeld, loadMs: load.loadMs });
      this.reshards.ready(record, loads);
      this.trace.probeClocks(plan.ranks, this.links);
      this.recovering = undefined;
      const read = loads.reduce((sum, load) => sum + load.bytesRead, 0);
      this.log(`plan ${plan.generation} (${cause.reason}): tp ${plan.tp} × pp ${plan.pp}, layers ${plan.layers.map(([a, b]) => `[${a}, ${b})`).join(' ')}, ready in ${Math.round(record.loadMs ?? 0)} ms, ${read} bytes read`);
    } catch (error) {
      this.reshards.abandon(record);
      if (this.state.generation !== plan.generation || this.closing) return;
      this.abandon(plan, error instanceof Error ? error : new Error(String(error)));
      this.cause ??= { reason: 'broken', decidedAt: Date.now() };
      this.dispatch({ type: 'MeshBroke', generation: plan.generation, reason: (error as Error).message });
    }
  }
}
