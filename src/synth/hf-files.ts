/**
 * The Hugging Face directory of a synthetic model: config.json,
 * generation_config.json, tokenizer.json, tokenizer_config.json and
 * model.safetensors (HF tensor names, un-permuted rotate-half layout).
 * (Synth sits above the tokenizer layer: it borrows its GGUF → tokenizer.json
 * conversion so both files carry the same vocabulary.)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../core/model-config.js';
import { writeSafetensors } from '../format/safetensors-writer.js';
import { tokenizerConfigFromGguf, tokenizerJsonFromGguf } from '../tokenizer/gguf-tokenizer.js';
import { metadataMap, synthGgufMetadata } from './gguf-metadata.js';
import type { ProgressSink, SynthModel } from './synthesize.js';
import { hfMoeConfig, hfTensorSources } from './hf-experts.js';

const HF_CLASSES = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  mixtral: 'MixtralForCausalLM',
  qwen2_moe: 'Qwen2MoeForCausalLM',
  qwen3_moe: 'Qwen3MoeForCausalLM',
} as const;

export function hfConfigJson(config: ModelConfig, dtype: 'f32' | 'f16'): Record<string, unknown> {
  const scaling = config.ropeScaling;
  const json: Record<string, unknown> = {
    architectures: [HF_CLASSES[config.architecture]],
    model_type: config.architecture,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    hidden_act: 'silu',
    max_position_embeddings: config.contextLength,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: scaling
      ? {
          rope_type: 'llama3',
          factor: scaling.factor,
          low_freq_factor: scaling.lowFreqFactor,
          high_freq_factor: scaling.highFreqFactor,
          original_max_position_embeddings: scaling.originalContextLength,
        }
      : null,
    attention_bias: config.qkvBias,
    tie_word_embeddings: config.tiedEmbeddings,
    bos_token_id: config.bosTokenId ?? null,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    torch_dtype: dtype === 'f32' ? 'float32' : 'float16',
    use_cache: true,
  };
  if (config.architecture !== 'llama') {
    Object.assign(json, { use_sliding_window: false, sliding_window: null, max_window_layers: config.numLayers });
  }
  return Object.assign(json, hfMoeConfig(config));
}

export function writeHfDirectory(model: SynthModel, dir: string, dtype: 'f32' | 'f16', seed: number, progress: ProgressSink): void {
  const { config, vocabulary } = model;
  const writeJson = (file: string, value: unknown): void => writeFileSync(join(dir, file), `${JSON.stringify(value, null, 2)}\n`);
  writeJson('config.json', hfConfigJson(config, dtype));
  writeJson('generation_config.json', {
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds,
    do_sample: false,
  });
  const metadata = metadataMap(synthGgufMetadata(config, vocabulary, dtype, 'tessera-synth'));
  writeJson('tokenizer.json', tokenizerJsonFromGguf(metadata));
  writeJson('tokenizer_config.json', { ...tokenizerConfigFromGguf(metadata), chat_template: vocabulary.chatTemplate, model_max_length: config.contextLength });
  // rope_freqs is llama.cpp's encoding of rope_scaling, which config.json already carries.
  const tensors = model.tensors.filter((spec) => spec.name !== 'rope_freqs.weight');
  writeSafetensors(
    join(dir, 'model.safetensors'),
    tensors.flatMap((spec) => hfTensorSources(spec, { weights: model.weights, seed, dtype, progress })),
    { format: 'pt' },
  );
}
