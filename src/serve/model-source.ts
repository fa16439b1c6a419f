/**
 * Where the served model comes from: a path, or `synth:PRESET[:DTYPE]` —
 * a random-weight model of a real shape written to a temporary folder at
 * start-up, so anyone can try the server without a model file. Its output is
 * noise, and start-up says so.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TesseraError } from '../core/errors.js';
import { getPreset, SYNTH_DTYPES, type SynthDType } from '../synth/presets.js';
import { synthesize } from '../synth/synthesize.js';

export const SYNTH_PREFIX = 'synth:';

export interface ModelSource {
  path: string;
  /** A name for /v1/models when none is given. */
  defaultName: string;
  synthetic: boolean;
  /** Removes what start-up wrote (the synthetic model's folder). */
  cleanup(): void;
}

/** Parameters below this count are written as f32; larger synthetic models as q8_0 to keep memory and start-up small. */
const F32_PARAMETER_LIMIT = 50e6;

export async function resolveModelSource(model: string, log: (line: string) => void): Promise<ModelSource> {
  if (!model.startsWith(SYNTH_PREFIX)) return { path: model, defaultName: model, synthetic: false, cleanup: () => undefined };
  const [presetName, dtypeText] = model.slice(SYNTH_PREFIX.length).split(':');
  const preset = getPreset(presetName);
  const parameters = preset.vocabSize * preset.hiddenSize * 2 + preset.numLayers * preset.hiddenSize * (preset.hiddenSize * 2 + preset.intermediateSize * 3);
  const dtype = (dtypeText ?? (parameters < F32_PARAMETER_LIMIT ? 'f32' : 'q8_0')) as SynthDType;
  if (!SYNTH_DTYPES.includes(dtype)) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `unknown dtype "${dtype}" in ${model}; use synth:PRESET or synth:PRESET:${SYNTH_DTYPES.join('|')}`);
  }
  const folder = mkdtempSync(join(tmpdir(), 'tessera-synth-'));
  const path = join(folder, `${presetName}-${dtype}.gguf`);
  log(`model ${model}: RANDOM WEIGHTS — generating a synthetic ${presetName} (${dtype}, seed 0) into ${path}; its output is noise, for trying the server only`);
  try {
    await synthesize({ preset: presetName, arch: preset.defaultArch, dtype, out: path, format: 'gguf', seed: 0 });
  } catch (error) {
    rmSync(folder, { recursive: true, force: true });
    throw error;
  }
  return { path, defaultName: model, synthetic: true, cleanup: () => rmSync(folder, { recursive: true, force: true }) };
}
