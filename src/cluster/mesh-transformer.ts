/**
 * A Transformer whose forward pass runs on the ranks of a mesh: the engine
 * keeps its step loop, sampler and stop logic, and each forward becomes one
 * step of the coordinator. The engine's KV blocks hold nothing here: the
 * ranks keep the keys and values, in pools that mirror the engine's, at the
 * same block ids.
 *
 * When the mesh re-shards (a rank lost, a worker joined, an admin call) the
 * ranks' KV is gone. The forward waits for the new plan, then either
 * - `report`s it: throws TESSERA_ERR_KV_LOST, and the engine core (which
 *   knows every sequence's tokens) preempts its sequences to recompute them
 *   (PLAN contract 2); or
 * - `replay`s it: re-runs each sequence's earlier tokens, which it recorded,
 *   then the batch (the one-sequence Engine of `run` and `logits`).
 * Either way the recomputed KV holds the same bits: every layout reduces in
 * the canonical order (DESIGN §4).
 */
import { availableParallelism } from 'node:os';
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import type { ModelConfig } from '../core/model-config.js';
import { isTesseraError, TesseraError } from '../core/errors.js';
import type { Batch, SequenceKv } from '../model/batch.js';
import { ABSENT } from '../model/shard-weights.js';
import { Transformer } from '../model/transformer.js';
import type { MeshCoordinator } from './coordinator.js';
import { forwardOnMesh } from './mesh-batches.js';
import { runAheadWanted } from './run-ahead.js';
import { BurstStash } from './decode-burst.js';
import type { PickedRows, TokenPick } from '../engine/token-pick.js';

export type KvLossMode = 'report' | 'replay';

export class MeshTransformer extends Transformer {
  /** The plan generation whose ranks hold this runner's KV (undefined before the first step). */
  private kvGeneration: number | undefined;
  /** Replay mode: each sequence's token ids by position, as computed so far. */
  private readonly history = new WeakMap<SequenceKv, number[]>();
  /** The later steps of each sequence's last burst, answered without a message (decode-burst.ts). */
  private readonly stash = new BurstStash();

  constructor(
    config: ModelConfig,
    readonly coordinator: MeshCoordinator,
    private readonly kvLoss: KvLossMode = 'replay',
    /** Decode steps per round trip to the ranks when every row is picked (--decode-burst; 1: one). */
    private readonly burst = 1,
  ) {
    // No weights here: every layer runs on the ranks.
    super(config, { tokenEmbedding: ABSENT, layers: [], outputNorm: ABSENT, output: ABSENT }, new ReferenceBackend());
  }

  /**
   * A one-stage mesh's ranks compute the next decode step ahead (run-ahead.ts)
   * when runAheadWanted says so (TESSERA_RUN_AHEAD; forked ranks that fill
   * this machine's cores do not) and ranks pick (not TESSERA_RANK_PICKS=0):
   * its every rank holds the logits, where a pipeline's first stage would need
   * the last stage's ids. The engine core then sends picks with their next uniform.
   */
  get runsAhead(): boolean {
    return this.coordinator.stages === 1 && rankPicks() && runAheadWanted(process.env.TESSERA_RUN_AHEAD, this.coordinator.forkedRanks, availableParallelism());
  }

  /**
   * Decode steps a one-stage mesh computes per round trip (decode-burst.ts):
   * the command's --decode-burst, where ranks pick (a pipeline's first stage
   * would need the last stage's ids) and no KV export reads each step back.
   */
  get decodeBurst(): number {
    return this.coordinator.stages === 1 && rankPicks() && !this.kvTap?.active ? this.burst : 1;
  }

  /** Reads back what each forward wrote for sequences whose KV is exported (a prefill replica, mesh-kv-export.ts). */
  kvTap: { readonly active: boolean; afterForward(batch: Batch, generation: number): Promise<void> } | undefined;

  /** The ranks hold the KV: an engine core driving this keeps block accounting without pools. */
  readonly kvPoolLayers: readonly [number, number] = [0, 0];

  /**
   * Groups of sequences an engine core may keep in flight: one per pipeline
   * stage, so each stage computes one group while the next stage computes
   * another (TESSERA_PP_OVERLAP=0: one group, micro-batches within each step).
   * Report mode only: replaying lost KV assumes one forward at a time.
   */
  get pipelineGroups(): number {
    return this.kvLoss === 'report' && process.env.TESSERA_PP_OVERLAP !== '0' ? this.coordinator.stages : 1;
  }

  /** Logits of the batch rows its segments ask for, in segment order: [rows, vocabSize]. */
  override async forwardBatch(batch: Batch): Promise<Float32Array> {
    return (await this.forwardPicked(batch, [])).logits;
  }

  /**
   * The batch rows its segments ask for, in segment order; a segment with a
   * pick gets its token picked on the reporting rank (an id comes back, not
   * the vocabulary's logits: token-pick.ts).
   */
  async forwardPicked(batch: Batch, picks: readonly (TokenPick | undefined)[]): Promise<PickedRows> {
    // The plan this batch's KV lives on: a forward that sees another one (even after a sibling in flight noticed first) lost it.
    const startedOn = this.kvGeneration;
    const split = this.pipelineGroups === 1;
    for (;;) {
      const generation = await this.coordinator.whenServing();
      try {
        if (startedOn !== undefined && startedOn !== generation && this.kvLoss === 'report') {
          this.kvGeneration = generation;
          throw new TesseraError('TESSERA_ERR_KV_LOST', `the mesh re-sharded (generation ${generation}); every sequence's KV must be computed again`);
        }
        if (this.kvGeneration !== undefined && this.kvGeneration !== generation) {
          this.kvGeneration = generation;
          await this.replay(batch, generation);
        }
        this.kvGeneration = generation;
        // A KV export reads back what each step wrote, so its steps go to the ranks.
        const stashed = this.kvTap?.active ? undefined : this.stash.take(generation, batch, picks);
        if (stashed) {
          this.record(batch);
          return stashed;
        }
        const rows = await forwardOnMesh(this.coordinator, batch, generation, rankPicks() ? picks : [], split);
        if (rows.following) this.stash.keep(generation, batch, picks, rows);
        // Inside the retry: a rank lost during the read is a lost generation, whose KV the core then recomputes.
        if (this.kvTap?.active) await this.kvTap.afterForward(batch, generation);
        this.record(batch);
        return rows;
      } catch (error) {
        // A generation that ended under this step: wait for the next plan and run it there.
        if (!isTesseraError(error) || error.code !== 'TESSERA_ERR_RANK_LOST') throw error;
      }
    }
  }

  /** Each sequence of the batch recomputes the tokens before its first position on the new plan. */
  private async replay(batch: Batch, generation: number): Promise<void> {
    const segments = batch.segments.filter((segment) => segment.positions[0] > 0);
    if (segments.length === 0) return;
    const earlier = segments.map((segment) => (this.history.get(segment.kv) ?? []).slice(0, segment.positions[0]));
    const ids = Int32Array.from(earlier.flat());
    let start = 0;
    const replayed: Batch = {
      ids,
      segments: segments.map((segment, i) => {
        const positions = Int32Array.from(earlier[i].keys());
        const part = { kv: segment.kv, start, positions, logits: 'none' as const };
        start += positions.length;
        return part;
      }),
    };
    await forwardOnMesh(this.coordinator, replayed, generation);
  }

  /** Replay mode: remember what each sequence computed, by position. */
  private record(batch: Batch): void {
    if (this.kvLoss !== 'replay') return;
    for (const segment of batch.segments) {
      let ids = this.history.get(segment.kv);
      if (!ids) this.history.set(segment.kv, (ids = []));
      segment.positions.forEach((position, i) => (ids[position] = batch.ids[segment.start + i]));
    }
  }
}

/** Tokens picked on the reporting rank (default); TESSERA_RANK_PICKS=0 brings every row's logits to the driver, as before, to compare. */
function rankPicks(): boolean {
  return process.env.TESSERA_RANK_PICKS !== '0';
}
