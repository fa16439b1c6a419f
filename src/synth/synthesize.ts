/**
 * `tessera synth`: writes a random-weight model of a real shape as a GGUF
 * file or a Hugging Face directory. Both describe the same model: the HF
 * directory holds the Hugging Face layout, the GGUF file the layout
 * llama.cpp's converter would have produced from it. Tensors are generated
 * and written one at a time, so memory stays bounded by the largest tensor.
 */
import { mkdirSync } from 'node:fs';
import type { DType } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import type { ModelConfig } from '../core/model-config.js';
import { quantize } from '../core/quant.js';
import { writeGguf } from '../format/gguf-writer.js';
import { synthGgufMetadata } from './gguf-metadata.js';
import { writeHfDirectory } from './hf-files.js';
import { presetAndStyle, synthConfig, synthTensorSpecs, type SynthTensorSpec } from './model-spec.js';
import { SYNTH_DTYPES, type SynthArch, type SynthDType } from './presets.js';
import { buildVocabulary, type SynthVocabulary } from './vocabulary.js';
import { permuteForGguf, tensorValues, type WeightContext } from './weights.js';

export { synthConfig } from './model-spec.js';

export interface SynthOptions {
  preset: string;
  arch: SynthArch;
  dtype: SynthDType;
  /** A .gguf file path, or a directory for format 'hf'. */
  out: string;
  format: 'gguf' | 'hf';
  seed: number;
  layers?: number;
  /**
   * Every layer gets layer 0's weights (generated once, written again): for
   * benchmarks of large shapes (Llama 3.1 8B), where generating each layer
   * takes minutes and the values do not change the speed. GGUF only.
   */
  repeatLayers?: boolean;
  /** Elements generated so far of the total. */
  onProgress?: (done: number, total: number) => void;
}

/** A synthetic model: its config (with token ids filled in) and vocabulary. */
export interface SynthModel {
  config: ModelConfig;
  vocabulary: SynthVocabulary;
  tensors: SynthTensorSpec[];
  /** What the weights depend on besides the seed. */
  weights: WeightContext;
}

export function synthModel(preset: string, arch: SynthArch, layers?: number): SynthModel {
  const config = synthConfig(preset, arch, layers);
  const { style } = presetAndStyle(preset, arch);
  const vocabulary = buildVocabulary(style, config.vocabSize);
  config.bosTokenId = vocabulary.bosTokenId;
  config.eosTokenIds = [...vocabulary.eosTokenIds];
  return { config, vocabulary, tensors: synthTensorSpecs(config), weights: { config, textTokenIds: vocabulary.textTokenIds } };
}

export async function synthesize(options: SynthOptions): Promise<void> {
  if (!SYNTH_DTYPES.includes(options.dtype)) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `unknown dtype "${String(options.dtype)}"; choose one of: ${SYNTH_DTYPES.join(', ')}`);
  }
  if (options.format !== 'gguf' && options.format !== 'hf') {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `unknown format "${String(options.format)}"; choose gguf or hf`);
  }
  if (!Number.isSafeInteger(options.seed)) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--seed must be a whole number, got ${String(options.seed)}`);
  }
  if (options.format === 'hf' && options.dtype !== 'f32' && options.dtype !== 'f16') {
    throw new TesseraError(
      'TESSERA_ERR_INVALID_ARGUMENT',
      `HF directories hold f32/f16/bf16 weights, not ${options.dtype}; use --dtype f32 or f16 with --format hf, or --format gguf for ${options.dtype}`,
    );
  }
  const model = synthModel(options.preset, options.arch, options.layers);
  const progress = progressCounter(model.tensors, options.onProgress);
  if (options.format === 'gguf') writeSynthGguf(model, options, progress);
  else {
    mkdirSync(options.out, { recursive: true });
    writeHfDirectory(model, options.out, options.dtype as 'f32' | 'f16', options.seed, progress);
  }
}

/** Called with each generated tensor's element count; reports running totals. */
export type ProgressSink = (elements: number) => void;

function progressCounter(tensors: SynthTensorSpec[], onProgress?: (done: number, total: number) => void): ProgressSink {
  const total = tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
  let done = 0;
  onProgress?.(0, total);
  return (elements) => {
    done += elements;
    onProgress?.(done, total);
  };
}

/** The stored dtype of a tensor: the chosen one for matrices whose rows are whole quant blocks, else f32. */
export function storedDType(spec: SynthTensorSpec, dtype: SynthDType): DType {
  if (!spec.isMatrix) return 'f32';
  const cols = spec.shape[spec.shape.length - 1];
  if (dtype === 'q4_k_m') {
    // Rows that are not whole super-blocks fall back as llama.cpp's mixes do (to an 8-bit type here).
    if (cols % 256 !== 0) return cols % 32 === 0 ? 'q8_0' : 'f32';
    return /(ffn_down|attn_v|^output)\.weight$/.test(spec.name) ? 'q6_k' : 'q4_k';
  }
  const blockSize = dtype === 'q8_0' || dtype === 'q4_0' ? 32 : 1;
  return cols % blockSize === 0 ? dtype : 'f32';
}

/** Values of a tensor as the GGUF file stores them (llama Q/K rows permuted for adjacent-pair RoPE). */
export function ggufTensorValues(model: SynthModel, seed: number, spec: SynthTensorSpec): Float32Array {
  const { config } = model;
  const values = tensorValues(model.weights, seed, spec.name, spec.shape);
  // Mixtral GGUFs are 'llama' files: their Q/K rows are permuted too.
  if (config.architecture !== 'llama' && config.architecture !== 'mixtral') return values;
  const cols = spec.shape[spec.shape.length - 1];
  if (spec.name.endsWith('.attn_q.weight')) return permuteForGguf(values, config.numHeads, cols);
  if (spec.name.endsWith('.attn_k.weight')) return permuteForGguf(values, config.numKvHeads, cols);
  return values;
}

function writeSynthGguf(model: SynthModel, options: SynthOptions, progress: ProgressSink): void {
  const name = `tessera-synth ${options.preset} ${options.arch}`;
  /** With repeatLayers: layer 0's tensor bytes by name. */
  const firstLayer = new Map<string, Uint8Array>();
  writeGguf(options.out, {
    metadata: synthGgufMetadata(model.config, model.vocabulary, options.dtype, name),
    tensors: model.tensors.map((spec) => {
      const dtype = storedDType(spec, options.dtype);
      return {
        name: spec.name,
        dtype,
        shape: spec.shape,
        data: () => {
          const layerZero = spec.name.replace(/^blk\.\d+\./, 'blk.0.');
          const repeated = options.repeatLayers && layerZero !== spec.name ? firstLayer.get(layerZero) : undefined;
          if (repeated) {
            progress(spec.shape.reduce((a, b) => a * b, 1));
            return repeated;
          }
          const values = ggufTensorValues(model, options.seed, spec);
          progress(values.length);
          const bytes = quantize(dtype, values);
          if (options.repeatLayers && spec.name.startsWith('blk.0.')) firstLayer.set(spec.name, bytes);
          return bytes;
        },
      };
    }),
  });
}
