/**
 * Inverse frequencies of RoPE's rotated pairs, including Llama 3's
 * frequency-dependent scaling (from config.json `rope_scaling`, or the
 * per-pair divisors a GGUF file stores as `rope_freqs.weight`).
 */
import type { ModelConfig } from '../core/model-config.js';

/** [ropeDims / 2] */
export function ropeInverseFrequencies(config: ModelConfig, storedFactors?: Float32Array): Float32Array {
  const pairs = config.ropeDims / 2;
  const result = new Float32Array(pairs);
  for (let i = 0; i < pairs; i++) {
    let frequency = Math.pow(config.ropeTheta, (-2 * i) / config.ropeDims);
    if (storedFactors) frequency /= storedFactors[i];
    else if (config.ropeScaling) frequency = llama3Scaled(frequency, config);
    result[i] = frequency;
  }
  return result;
}

function llama3Scaled(frequency: number, config: ModelConfig): number {
  const scaling = config.ropeScaling;
  if (!scaling) return frequency;
  const lowWavelength = scaling.originalContextLength / scaling.lowFreqFactor;
  const highWavelength = scaling.originalContextLength / scaling.highFreqFactor;
  const wavelength = (2 * Math.PI) / frequency;
  if (wavelength < highWavelength) return frequency;
  if (wavelength > lowWavelength) return frequency / scaling.factor;
  const smooth =
    (scaling.originalContextLength / wavelength - scaling.lowFreqFactor) /
    (scaling.highFreqFactor - scaling.lowFreqFactor);
  return (1 - smooth) * (frequency / scaling.factor) + smooth * frequency;
}
