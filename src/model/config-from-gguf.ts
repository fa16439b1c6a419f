/** ModelConfig from GGUF metadata (llama.cpp's key names). */
import type { Architecture, MixtureOfExpertsConfig, ModelConfig } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import { MetadataReader } from './metadata-reader.js';

const GGUF_ARCHITECTURES: Record<string, Architecture> = {
  llama: 'llama',
  mistral: 'mistral',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  qwen2moe: 'qwen2_moe',
  qwen3moe: 'qwen3_moe',
};

/** llama.cpp's build_moe_ffn `norm_w` per GGUF architecture when the file has no expert_weights_norm key. */
const NORMALISES_TOP_K: Readonly<Record<string, boolean>> = { llama: true, mistral: true, qwen2moe: false, qwen3moe: true };

export interface GgufConfigInput {
  metadata: ReadonlyMap<string, unknown>;
  /** Canonical tensor names present in the file. */
  tensorNames: ReadonlySet<string>;
  /** Rows of token_embd.weight, used when the file states no vocabulary size. */
  embeddingRows: number;
}

export function configFromGguf(input: GgufConfigInput): ModelConfig {
  const meta = new MetadataReader((key) => input.metadata.get(key), 'the GGUF metadata');
  const name = meta.string('general.architecture');
  const architecture = GGUF_ARCHITECTURES[name];
  if (!architecture) {
    throw new TesseraError(
      'TESSERA_ERR_UNSUPPORTED_ARCH',
      `architecture "${name}" is not supported; supported: ${Object.keys(GGUF_ARCHITECTURES).join(', ')}`,
    );
  }
  const key = (suffix: string): string => `${name}.${suffix}`;
  const moe = moeFromGguf(meta, name, input.tensorNames);
  const hiddenSize = meta.number(key('embedding_length'));
  const numHeads = meta.number(key('attention.head_count'));
  const headDim = meta.number(key('attention.key_length'), hiddenSize / numHeads);
  const tokens = input.metadata.get('tokenizer.ggml.tokens');
  const vocabSize = meta.number(key('vocab_size'), Array.isArray(tokens) ? tokens.length : input.embeddingRows);
  const eosTokenIds = [...meta.numberList('tokenizer.ggml.eos_token_id'), ...meta.numberList('tokenizer.ggml.eot_token_id')];
  return {
    // Mixtral GGUFs say "llama" and carry experts.
    architecture: moe && architecture === 'llama' ? 'mixtral' : architecture,
    vocabSize,
    hiddenSize,
    intermediateSize: meta.number(key('feed_forward_length'), moe?.expertIntermediateSize),
    numLayers: meta.number(key('block_count')),
    numHeads,
    numKvHeads: meta.number(key('attention.head_count_kv'), numHeads),
    headDim,
    ropeDims: meta.number(key('rope.dimension_count'), headDim),
    ropeTheta: meta.number(key('rope.freq_base'), 10000),
    // llama.cpp's converter permutes llama Q/K rows so that adjacent pairs rotate.
    ropeStyle: architecture === 'llama' || architecture === 'mistral' ? 'adjacent' : 'halves',
    rmsNormEps: meta.number(key('attention.layer_norm_rms_epsilon'), 1e-5),
    contextLength: meta.number(key('context_length'), 2048),
    tiedEmbeddings: !input.tensorNames.has('output.weight'),
    qkvBias: input.tensorNames.has('blk.0.attn_q.bias'),
    qkNorm: input.tensorNames.has('blk.0.attn_q_norm.weight'),
    bosTokenId: meta.optionalNumber('tokenizer.ggml.bos_token_id'),
    eosTokenIds: [...new Set(eosTokenIds)],
    ...(moe && { moe }),
  };
}

/** The MoE keys llama.cpp reads ({arch}.expert_count …); undefined for a dense model. */
function moeFromGguf(meta: MetadataReader, arch: string, tensorNames: ReadonlySet<string>): MixtureOfExpertsConfig | undefined {
  const key = (suffix: string): string => `${arch}.${suffix}`;
  const numExperts = meta.number(key('expert_count'), 0);
  if (numExperts <= 1) return undefined;
  const feedForward = meta.optionalNumber(key('feed_forward_length'));
  const expertIntermediateSize = meta.number(key('expert_feed_forward_length'), feedForward);
  const hasShared = tensorNames.has('blk.0.ffn_gate_shexp.weight');
  return {
    numExperts,
    numExpertsPerToken: meta.number(key('expert_used_count')),
    normTopKProb: meta.boolean(key('expert_weights_norm'), NORMALISES_TOP_K[arch] ?? true),
    expertIntermediateSize,
    ...(hasShared && { sharedExpertIntermediateSize: meta.number(key('expert_shared_feed_forward_length'), feedForward) }),
  };
}
