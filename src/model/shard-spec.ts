/**
 * How one tensor-parallel rank's weights split (DESIGN §3), as a pure
 * function of the config and the degree. A ShardSpec per weight says which
 * slice a rank holds: `column` (a range of output rows), `row` (a range of
 * input columns), `vocab` (a range of vocabulary rows), or `replicated`.
 *
 * Row-parallel slices follow the canonical reduction tree (backend.ts): a
 * row of K inputs is cut into leaves of 32 elements (256 for K-quants; the
 * last leaf may be short, as K = 172 of stories260K gives leaves of
 * 32,32,32,32,32,12), and the leaf range [0, L) is cut the way the tree cuts
 * it, mid = lo + floor((hi - lo) / 2), once per doubling of the degree. Each
 * rank then owns exactly one subtree, so its local matmul (whose tree over
 * its own leaves has the same shape) computes that subtree's partial sum,
 * and the cross-rank all-reduce finishes the tree. Slices may be uneven
 * (172 over 2 ranks: 96 + 76; over 4: 32 + 64 + 32 + 44); the column-parallel
 * gate/up rows follow the same cut. No padding is stored or computed.
 *
 * Where the tree's cut does not land on head boundaries (o_proj of
 * stories260K at tp 4: 64 inputs are 2 leaves, 8 heads of 8), the
 * projection is `gathered` instead: the ranks all-gather the input, each
 * computes a range of output rows over the whole K, and the outputs are
 * gathered — exact, at the price of two gathers instead of one all-reduce.
 */
import type { DType } from '../core/dtype.js';
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import { reductionLeafSize } from '../backend/backend.js';

export type ShardKind = 'column' | 'row' | 'vocab' | 'replicated';

/** [start, end) along the split dimension: output rows for column/vocab, input columns for row. */
export interface ShardSpec {
  readonly kind: ShardKind;
  readonly start: number;
  readonly end: number;
}

/** A linear layer that ends in a cross-rank sum: one all-reduce, or gathers when the tree cannot be split. */
export type ProjectionMode = 'row' | 'gathered';

/**
 * How the feed-forward splits: as its down projection does, or `shared`
 * (a shared stage, below).
 */
export type FeedForwardMode = ProjectionMode | 'shared';

export interface ShardLayout {
  readonly tp: number;
  readonly tpRank: number;
  /** Query heads of this rank, [start, end). */
  readonly queryHeads: readonly [number, number];
  /** KV heads of this rank (one shared head when tp exceeds their count). */
  readonly kvHeads: readonly [number, number];
  readonly vocab: readonly [number, number];
  readonly attentionOutput: ProjectionMode;
  readonly feedForward: FeedForwardMode;
  /**
   * A shared stage (two ranks on one host, shared-stage.ts): each rank runs
   * every head and holds the whole embedding and KV, and of every matrix the
   * rows heldRows(rows, tpRank, overlap) gives; the two split each matmul's
   * rows as they compute (native/src/comm/row-sharing.cc).
   */
  readonly shared?: { readonly overlap: number };
  /** Rows of gate/up (columns of down) this rank holds. */
  readonly intermediate: readonly [number, number];
  /** Output rows this rank computes in a gathered projection. */
  readonly hidden: readonly [number, number];
}

/** Refuses degrees that cannot split the model, naming the constraint. */
export function checkTensorParallel(config: ModelConfig, tp: number): void {
  const refuse = (why: string): never => {
    throw new TesseraError('TESSERA_ERR_SHARD_CONSTRAINT', `--tp ${tp} cannot split this model: ${why}`);
  };
  if (!Number.isInteger(tp) || tp < 1 || (tp & (tp - 1)) !== 0) refuse('the degree must be a power of two (1, 2, 4, 8…) so that ranks own whole subtrees of the canonical reduction');
  if (config.numHeads % tp !== 0) refuse(`its ${config.numHeads} attention heads do not divide by ${tp}; use a power of two that divides ${config.numHeads}`);
  if (config.numKvHeads % tp !== 0 && tp % config.numKvHeads !== 0) {
    refuse(`its ${config.numKvHeads} KV heads neither divide by ${tp} nor divide ${tp}, so they can be neither split nor replicated`);
  }
  // MoE layers: StageModel refuses them unless given expert feed-forwards (moe-stage.ts: experts whole or spread over the tp ranks).
}

/**
 * The layout of rank `tpRank` of `tp`; `dtypes` are the stored types of
 * o_proj and down_proj. `overlap` > 0 asks for a shared stage (two ranks on
 * one host, ShardLayout.shared): each rank holds its half of every matrix's
 * rows plus `overlap` of them beyond it; granted when canShareRows.
 */
export function shardLayout(config: ModelConfig, tp: number, tpRank: number, dtypes: { attentionOutput: DType; down: DType }, overlap = 0): ShardLayout {
  checkTensorParallel(config, tp);
  const headsPerRank = config.numHeads / tp;
  const queryHeads: [number, number] = [tpRank * headsPerRank, (tpRank + 1) * headsPerRank];
  const kvHeads: [number, number] =
    config.numKvHeads >= tp
      ? [(tpRank * config.numKvHeads) / tp, ((tpRank + 1) * config.numKvHeads) / tp]
      : [Math.floor((tpRank * config.numKvHeads) / tp), Math.floor((tpRank * config.numKvHeads) / tp) + 1];
  const attentionWidth = config.numHeads * config.headDim;
  const attentionSplit = treeSplit(attentionWidth, reductionLeafSize(dtypes.attentionOutput), tp, tpRank);
  const headColumns = [queryHeads[0] * config.headDim, queryHeads[1] * config.headDim];
  const attentionRow = attentionSplit !== undefined && attentionSplit[0] === headColumns[0] && attentionSplit[1] === headColumns[1];
  const downSplit = treeSplit(config.intermediateSize, reductionLeafSize(dtypes.down), tp, tpRank);
  if (canShareRows(config, tp, overlap)) return sharedLayout(config, tp, tpRank, overlap);
  return {
    tp,
    tpRank,
    queryHeads,
    kvHeads,
    vocab: evenSplit(config.vocabSize, tp, tpRank),
    attentionOutput: tp > 1 && !attentionRow ? 'gathered' : 'row',
    feedForward: downSplit === undefined ? 'gathered' : 'row',
    intermediate: downSplit ?? evenSplit(config.intermediateSize, tp, tpRank),
    hidden: evenSplit(config.hiddenSize, tp, tpRank),
  };
}

/** Every head, the whole vocabulary and the whole intermediate on this rank: what it holds of each matrix is heldRows'. */
function sharedLayout(config: ModelConfig, tp: number, tpRank: number, overlap: number): ShardLayout {
  return {
    tp,
    tpRank,
    queryHeads: [0, config.numHeads],
    kvHeads: [0, config.numKvHeads],
    vocab: [0, config.vocabSize],
    attentionOutput: 'row',
    feedForward: 'shared',
    intermediate: [0, config.intermediateSize],
    hidden: [0, config.hiddenSize],
    shared: { overlap },
  };
}

const DEFAULT_SHARED_OVERLAP = 0.25;

/**
 * How far beyond its half of every matrix's rows a rank of a shared pair
 * holds (TESSERA_TP_SHARE, default 0.25: rows the faster rank may take
 * over; 0 turns sharing off, 0.5 holds every row). Read by the driver,
 * which sends it in every plan (PlanMessage.rowShare): a worker's own
 * environment does not decide it, so the two ranks of a pair agree.
 */
export function sharedRowsOverlap(value = process.env.TESSERA_TP_SHARE): number {
  if (value === undefined || value === '') return DEFAULT_SHARED_OVERLAP;
  const overlap = Number(value);
  if (!(overlap >= 0 && overlap <= 0.5)) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `TESSERA_TP_SHARE must be a fraction from 0 (off) to 0.5, got ${value}`);
  return overlap;
}

/**
 * Whether a shared stage can be laid out: two ranks, dense layers, and every
 * matrix's rows in whole groups of 16 (the kernels' tiles, where claims start).
 */
export function canShareRows(config: ModelConfig, tp: number, overlap: number): boolean {
  const rows = [config.hiddenSize, config.intermediateSize, config.numHeads * config.headDim, config.numKvHeads * config.headDim, config.vocabSize];
  return tp === 2 && overlap > 0 && overlap <= 0.5 && !config.moe && rows.every((count) => count % 16 === 0);
}

/** Rows of `length` that rank 0 or 1 holds in a shared projection: its half plus `overlap` of the rows, cut at 16 rows. */
export function heldRows(length: number, tpRank: number, overlap: number): [number, number] {
  if (tpRank === 0) return [0, Math.min(length, Math.ceil((length * (0.5 + overlap)) / 16) * 16)];
  return [Math.max(0, Math.floor((length * (0.5 - overlap)) / 16) * 16), length];
}

/**
 * Elements [start, end) of a K-long row that rank `index` of `parts` owns
 * when the canonical tree's leaf range is cut `log2(parts)` times; undefined
 * when some rank would get no leaf.
 */
export function treeSplit(K: number, leafSize: number, parts: number, index: number): [number, number] | undefined {
  const numLeaves = Math.ceil(K / leafSize);
  if (numLeaves < parts) return undefined;
  let [lo, hi, count, at] = [0, numLeaves, parts, index];
  while (count > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    count /= 2;
    if (at < count) hi = mid;
    else {
      lo = mid;
      at -= count;
    }
  }
  return [lo * leafSize, Math.min(hi * leafSize, K)];
}

/** Near-equal contiguous ranges of `length` over `parts`. */
export function evenSplit(length: number, parts: number, index: number): [number, number] {
  return [Math.floor((length * index) / parts), Math.floor((length * (index + 1)) / parts)];
}

/** The ShardSpec of every weight of one layer (canonical names without the `blk.N.` prefix) and the model-wide ones. */
export function shardSpecs(config: ModelConfig, layout: ShardLayout): Record<string, ShardSpec> {
  const whole = (length: number): ShardSpec => ({ kind: 'replicated', start: 0, end: length });
  const column = ([start, end]: readonly [number, number], unit = 1): ShardSpec => ({ kind: 'column', start: start * unit, end: end * unit });
  const row = ([start, end]: readonly [number, number], unit = 1): ShardSpec => ({ kind: 'row', start: start * unit, end: end * unit });
  const { headDim, hiddenSize } = config;
  const attentionOutput = layout.attentionOutput === 'row' ? row(layout.queryHeads, headDim) : column(layout.hidden);
  if (layout.shared) return sharedSpecs(config, layout.tpRank, layout.shared.overlap);
  const down = layout.feedForward === 'row' ? row(layout.intermediate) : column(layout.hidden);
  return {
    'token_embd.weight': { kind: 'vocab', start: layout.vocab[0], end: layout.vocab[1] },
    'output.weight': { kind: 'vocab', start: layout.vocab[0], end: layout.vocab[1] },
    'output_norm.weight': whole(hiddenSize),
    'attn_norm.weight': whole(hiddenSize),
    'ffn_norm.weight': whole(hiddenSize),
    'attn_q.weight': column(layout.queryHeads, headDim),
    'attn_k.weight': column(layout.kvHeads, headDim),
    'attn_v.weight': column(layout.kvHeads, headDim),
    'attn_q.bias': column(layout.queryHeads, headDim),
    'attn_k.bias': column(layout.kvHeads, headDim),
    'attn_v.bias': column(layout.kvHeads, headDim),
    'attn_q_norm.weight': whole(headDim),
    'attn_k_norm.weight': whole(headDim),
    'attn_output.weight': attentionOutput,
    'ffn_gate.weight': column(layout.intermediate),
    'ffn_up.weight': column(layout.intermediate),
    'ffn_down.weight': down,
  };
}

/** A shared stage's specs: the held rows of every matrix, every vector and the embedding whole. */
function sharedSpecs(config: ModelConfig, tpRank: number, overlap: number): Record<string, ShardSpec> {
  const held = (rows: number): ShardSpec => {
    const [start, end] = heldRows(rows, tpRank, overlap);
    return { kind: 'column', start, end };
  };
  const whole = (length: number): ShardSpec => ({ kind: 'replicated', start: 0, end: length });
  const { headDim, hiddenSize, intermediateSize, numHeads, numKvHeads, vocabSize } = config;
  // q, k and v are shared as one concatenation (one round a layer): what a rank holds is one run of it.
  const [queryRows, kvRows] = [numHeads * headDim, numKvHeads * headDim];
  const [runStart, runEnd] = heldRows(queryRows + 2 * kvRows, tpRank, overlap);
  const ofRun = (offset: number, rows: number): ShardSpec => {
    const start = Math.min(rows, Math.max(0, runStart - offset));
    return { kind: 'column', start, end: Math.max(start, Math.min(rows, runEnd - offset)) };
  };
  return {
    'token_embd.weight': whole(vocabSize),
    'output.weight': held(vocabSize),
    'output_norm.weight': whole(hiddenSize),
    'attn_norm.weight': whole(hiddenSize),
    'ffn_norm.weight': whole(hiddenSize),
    'attn_q.weight': ofRun(0, queryRows),
    'attn_k.weight': ofRun(queryRows, kvRows),
    'attn_v.weight': ofRun(queryRows + kvRows, kvRows),
    'attn_q.bias': whole(numHeads * headDim),
    'attn_k.bias': whole(numKvHeads * headDim),
    'attn_v.bias': whole(numKvHeads * headDim),
    'attn_q_norm.weight': whole(headDim),
    'attn_k_norm.weight': whole(headDim),
    'attn_output.weight': held(hiddenSize),
    'ffn_gate.weight': held(intermediateSize),
    'ffn_up.weight': held(intermediateSize),
    'ffn_down.weight': held(hiddenSize),
  };
}
