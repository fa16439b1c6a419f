/**
 * The layout of ranks in a (pp, tp) mesh: rank = stage * tp + tpRank. The
 * ranks of one stage form a tensor-parallel group; rank (s, t) hands its
 * hidden states to rank (s + 1, t).
 */
import { TesseraError } from '../core/errors.js';

export interface MeshShape {
  readonly tp: number;
  readonly pp: number;
}

export interface RankPlace {
  readonly stage: number;
  readonly tpRank: number;
}

export function meshSize(shape: MeshShape): number {
  return shape.tp * shape.pp;
}

export function placeOf(rank: number, shape: MeshShape): RankPlace {
  return { stage: Math.floor(rank / shape.tp), tpRank: rank % shape.tp };
}

export function rankAt(place: RankPlace, shape: MeshShape): number {
  return place.stage * shape.tp + place.tpRank;
}

/** Transport ranks of a stage's tensor-parallel group, in group order. */
export function stageRanks(stage: number, shape: MeshShape): number[] {
  return Array.from({ length: shape.tp }, (_, tpRank) => rankAt({ stage, tpRank }, shape));
}

/**
 * Half-open layer ranges of each stage: `layers` as given (--pp-layers
 * 10,12), else as even as possible with the earlier stages one layer larger.
 */
export function stageLayerRanges(numLayers: number, pp: number, layers?: readonly number[]): [number, number][] {
  if (!Number.isInteger(pp) || pp < 1 || pp > numLayers) {
    throw new TesseraError('TESSERA_ERR_SHARD_CONSTRAINT', `--pp ${pp} cannot split ${numLayers} layers; each stage needs at least one layer, so use 1..${numLayers}`);
  }
  const counts = layers ? [...layers] : Array.from({ length: pp }, (_, s) => Math.floor(numLayers / pp) + (s < numLayers % pp ? 1 : 0));
  if (counts.length !== pp || counts.some((c) => !Number.isInteger(c) || c < 1) || counts.reduce((a, b) => a + b, 0) !== numLayers) {
    throw new TesseraError(
      'TESSERA_ERR_SHARD_CONSTRAINT',
      `--pp-layers ${counts.join(',')} must name ${pp} positive layer counts that add up to the model's ${numLayers} layers`,
    );
  }
  const ranges: [number, number][] = [];
  let start = 0;
  for (const count of counts) {
    ranges.push([start, start + count]);
    start += count;
  }
  return ranges;
}
