/**
 * GGUF metadata of a synthetic model: the hyperparameters llama.cpp reads
 * for llama/qwen2/qwen3 (llama-model.cpp load_hparams) and the tokenizer.ggml
 * keys of its vocabulary (llama-vocab.cpp load).
 */
import type { ModelConfig } from '../core/model-config.js';
import { GgufValueType, type GgufMetadataEntry, type GgufValue } from '../format/gguf-types.js';
import type { SynthDType } from './presets.js';
import type { SynthVocabulary } from './vocabulary.js';

/** llama_ftype: what most tensors of the file are. */
const FILE_TYPES: Readonly<Record<SynthDType, number>> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, q4_k_m: 15 };

const u32 = (key: string, value: number): GgufMetadataEntry => ({ key, type: GgufValueType.UINT32, value });
const f32 = (key: string, value: number): GgufMetadataEntry => ({ key, type: GgufValueType.FLOAT32, value });
const str = (key: string, value: string): GgufMetadataEntry => ({ key, type: GgufValueType.STRING, value });
const bool = (key: string, value: boolean): GgufMetadataEntry => ({ key, type: GgufValueType.BOOL, value });
const array = (key: string, arrayType: GgufValueType, value: GgufValue[]): GgufMetadataEntry => ({
  key,
  type: GgufValueType.ARRAY,
  arrayType,
  value,
});

/** general.architecture of each Tessera architecture (Mixtral files are 'llama' with experts). */
const GGUF_ARCH_NAMES: Readonly<Record<string, string>> = { mixtral: 'llama', qwen2_moe: 'qwen2moe', qwen3_moe: 'qwen3moe' };

export function synthGgufMetadata(config: ModelConfig, vocabulary: SynthVocabulary, dtype: SynthDType, name: string): GgufMetadataEntry[] {
  const arch = GGUF_ARCH_NAMES[config.architecture] ?? config.architecture;
  const entries: GgufMetadataEntry[] = [
    str('general.architecture', arch),
    str('general.name', name),
    u32('general.file_type', FILE_TYPES[dtype]),
    u32('general.quantization_version', 2),
    u32(`${arch}.vocab_size`, config.vocabSize),
    u32(`${arch}.context_length`, config.contextLength),
    u32(`${arch}.embedding_length`, config.hiddenSize),
    u32(`${arch}.block_count`, config.numLayers),
    u32(`${arch}.feed_forward_length`, config.intermediateSize),
    u32(`${arch}.attention.head_count`, config.numHeads),
    u32(`${arch}.attention.head_count_kv`, config.numKvHeads),
    u32(`${arch}.attention.key_length`, config.headDim),
    u32(`${arch}.attention.value_length`, config.headDim),
    f32(`${arch}.attention.layer_norm_rms_epsilon`, config.rmsNormEps),
    f32(`${arch}.rope.freq_base`, config.ropeTheta),
    u32(`${arch}.rope.dimension_count`, config.ropeDims),
    ...expertMetadata(config, arch),
  ];
  return [...entries, ...vocabularyMetadata(vocabulary)];
}

/** The MoE keys llama.cpp reads (llama-model.cpp load_hparams, models/qwen2moe.cpp, qwen3moe.cpp). */
function expertMetadata(config: ModelConfig, arch: string): GgufMetadataEntry[] {
  const moe = config.moe;
  if (!moe) return [];
  const entries = [u32(`${arch}.expert_count`, moe.numExperts), u32(`${arch}.expert_used_count`, moe.numExpertsPerToken)];
  // A 'llama' file takes feed_forward_length as the expert size (Mixtral presets keep the two equal).
  if (arch !== 'llama') entries.push(u32(`${arch}.expert_feed_forward_length`, moe.expertIntermediateSize));
  if (moe.sharedExpertIntermediateSize !== undefined) {
    entries.push(u32(`${arch}.expert_shared_feed_forward_length`, moe.sharedExpertIntermediateSize));
  }
  return entries;
}

function vocabularyMetadata(vocabulary: SynthVocabulary): GgufMetadataEntry[] {
  const entries: GgufMetadataEntry[] = [str('tokenizer.ggml.model', vocabulary.model)];
  if (vocabulary.pre) entries.push(str('tokenizer.ggml.pre', vocabulary.pre));
  entries.push(array('tokenizer.ggml.tokens', GgufValueType.STRING, vocabulary.tokens));
  if (vocabulary.scores) entries.push(array('tokenizer.ggml.scores', GgufValueType.FLOAT32, vocabulary.scores));
  entries.push(array('tokenizer.ggml.token_type', GgufValueType.INT32, vocabulary.tokenTypes));
  if (vocabulary.merges) entries.push(array('tokenizer.ggml.merges', GgufValueType.STRING, vocabulary.merges));
  entries.push(u32('tokenizer.ggml.bos_token_id', vocabulary.bosTokenId));
  entries.push(u32('tokenizer.ggml.eos_token_id', vocabulary.eosTokenId));
  if (vocabulary.unknownTokenId !== undefined) entries.push(u32('tokenizer.ggml.unknown_token_id', vocabulary.unknownTokenId));
  if (vocabulary.paddingTokenId !== undefined) entries.push(u32('tokenizer.ggml.padding_token_id', vocabulary.paddingTokenId));
  entries.push(bool('tokenizer.ggml.add_bos_token', vocabulary.addBosToken));
  entries.push(bool('tokenizer.ggml.add_eos_token', false));
  entries.push(str('tokenizer.chat_template', vocabulary.chatTemplate));
  return entries;
}

/** The metadata as the GGUF reader would return it (for tokenizer conversion without a file). */
export function metadataMap(entries: readonly GgufMetadataEntry[]): Map<string, GgufValue> {
  return new Map(entries.map((entry) => [entry.key, entry.value]));
}
