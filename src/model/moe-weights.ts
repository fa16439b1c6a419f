/**
 * The weights of one mixture-of-experts layer, read from whichever layout
 * the file stores (see hf-names.ts): GGUF `ffn_*_exps` [E, ·, ·], packed
 * Hugging Face `ffn_gate_up_exps` [E, 2·ff, d] + `ffn_down_exps` [E, d, ff],
 * or one tensor per expert. Every expert becomes its own 2-D weight read
 * straight from its byte range, so a rank of an expert-parallel mesh reads
 * only the experts placed on it.
 */
import type { Weight } from '../backend/backend.js';
import { TesseraError } from '../core/errors.js';
import type { MixtureOfExpertsConfig, ModelConfig } from '../core/model-config.js';
import type { DenseFeedForwardWeights } from './feed-forward.js';
import type { WeightLoader } from './transformer-weights.js';

export interface ExpertWeights {
  /** [expertIntermediateSize, hiddenSize] */
  gate: Weight;
  /** [expertIntermediateSize, hiddenSize] */
  up: Weight;
  /** [hiddenSize, expertIntermediateSize] */
  down: Weight;
}

export interface MixtureOfExpertsWeights {
  /** [numExperts, hiddenSize] */
  router: Weight;
  /** [numExperts]; undefined where the expert is placed on another rank. */
  experts: (ExpertWeights | undefined)[];
  /** Qwen2-MoE shared expert ([sharedExpertIntermediateSize, hiddenSize] …). */
  shared?: DenseFeedForwardWeights;
  /** [1, hiddenSize] logit of the shared expert's sigmoid gate. */
  sharedGate?: Weight;
}

/** Whether layer `layer` of the file is an MoE layer (it has a router). */
export function isMixtureOfExpertsLayer(loader: WeightLoader, layer: number): boolean {
  return loader.has(`blk.${layer}.ffn_gate_inp.weight`);
}

/** Loads an MoE layer; `ownsExpert` picks the experts this rank computes (all by default). */
export function loadMixtureOfExperts(
  loader: WeightLoader,
  config: ModelConfig,
  layer: number,
  ownsExpert: (expert: number) => boolean = () => true,
): MixtureOfExpertsWeights {
  const moe = config.moe;
  if (!moe) {
    throw new TesseraError('TESSERA_ERR_BAD_CONFIG', `layer ${layer} has an expert router but the config names no experts; set num_experts / expert_count`);
  }
  const name = (suffix: string): string => `blk.${layer}.${suffix}`;
  const hidden = config.hiddenSize;
  const experts: (ExpertWeights | undefined)[] = [];
  for (let expert = 0; expert < moe.numExperts; expert++) {
    experts.push(ownsExpert(expert) ? loadExpert(loader, moe, hidden, layer, expert) : undefined);
  }
  const weights: MixtureOfExpertsWeights = {
    router: loader.required(name('ffn_gate_inp.weight'), [moe.numExperts, hidden]),
    experts,
  };
  const shared = moe.sharedExpertIntermediateSize;
  if (shared !== undefined) {
    weights.shared = {
      gate: loader.required(name('ffn_gate_shexp.weight'), [shared, hidden]),
      up: loader.required(name('ffn_up_shexp.weight'), [shared, hidden]),
      down: loader.required(name('ffn_down_shexp.weight'), [hidden, shared]),
    };
    // GGUF stores the 1-row gate as a vector [hidden]; Hugging Face as [1, hidden].
    const gateName = name('ffn_gate_inp_shexp.weight');
    weights.sharedGate = loader.rowRange(gateName, sharedGateShape(loader, gateName, hidden), 0, 1, [1, hidden]);
  }
  return weights;
}

function loadExpert(loader: WeightLoader, moe: MixtureOfExpertsConfig, hidden: number, layer: number, expert: number): ExpertWeights {
  const name = (suffix: string): string => `blk.${layer}.${suffix}`;
  const { numExperts: count, expertIntermediateSize: ff } = moe;
  const down = (): Weight => {
    if (loader.has(name('ffn_down_exps.weight'))) {
      return loader.rowRange(name('ffn_down_exps.weight'), [count, hidden, ff], expert * hidden, (expert + 1) * hidden, [hidden, ff]);
    }
    return loader.required(name(`ffn_down.${expert}.weight`), [hidden, ff]);
  };
  if (loader.has(name('ffn_gate_up_exps.weight'))) {
    const packed = name('ffn_gate_up_exps.weight');
    const start = expert * 2 * ff;
    return {
      gate: loader.rowRange(packed, [count, 2 * ff, hidden], start, start + ff, [ff, hidden]),
      up: loader.rowRange(packed, [count, 2 * ff, hidden], start + ff, start + 2 * ff, [ff, hidden]),
      down: down(),
    };
  }
  if (loader.has(name('ffn_gate_exps.weight'))) {
    const rows = (suffix: string): Weight => loader.rowRange(name(suffix), [count, ff, hidden], expert * ff, (expert + 1) * ff, [ff, hidden]);
    return { gate: rows('ffn_gate_exps.weight'), up: rows('ffn_up_exps.weight'), down: down() };
  }
  return {
    gate: loader.required(name(`ffn_gate.${expert}.weight`), [ff, hidden]),
    up: loader.required(name(`ffn_up.${expert}.weight`), [ff, hidden]),
    down: down(),
  };
}

function sharedGateShape(loader: WeightLoader, name: string, hidden: number): number[] {
  return loader.shapeOf(name)?.length === 1 ? [hidden] : [1, hidden];
}
