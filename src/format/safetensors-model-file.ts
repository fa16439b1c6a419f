/**
 * A model given as one `.safetensors` file with its config.json beside it
 * under a matching name, as small test checkpoints are often kept (several
 * models in one folder): `NAME.safetensors` + `NAME_config.json` (or
 * `NAME.config.json`, or a lone `config.json` in the same folder). The
 * result looks like a Hugging Face directory without a tokenizer.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { TesseraError } from '../core/errors.js';
import type { HfDirectory } from './hf-directory.js';
import { SafetensorsStore } from './safetensors.js';

/** True when `path` is a single .safetensors file (not a directory). */
export function isSafetensorsFile(path: string): boolean {
  return path.endsWith('.safetensors') && existsSync(path) && statSync(path).isFile();
}

/** Config files looked for beside `NAME.safetensors`, in order. */
export function configCandidates(path: string): string[] {
  const folder = dirname(path);
  const stem = basename(path, '.safetensors');
  return [join(folder, `${stem}_config.json`), join(folder, `${stem}.config.json`), join(folder, 'config.json')];
}

export function openSafetensorsModelFile(path: string): HfDirectory {
  const candidates = configCandidates(path);
  const configPath = candidates.find((candidate) => existsSync(candidate));
  if (!configPath) {
    throw new TesseraError(
      'TESSERA_ERR_BAD_CONFIG',
      `${path} needs its config.json; put it beside the file as ${basename(candidates[0])} or config.json, or pass the model's directory`,
    );
  }
  const config = readConfig(configPath);
  const dir = dirname(path);
  const tokenizerJson = join(dir, `${basename(path, '.safetensors')}_tokenizer.json`);
  return {
    dir,
    config,
    store: SafetensorsStore.open(path),
    ...(existsSync(tokenizerJson) && { tokenizerJsonPath: tokenizerJson }),
  };
}

function readConfig(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_BAD_CONFIG', `${path} is not valid JSON (${(error as Error).message}); fix or re-download it`, { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TesseraError('TESSERA_ERR_BAD_CONFIG', `${path} must hold a JSON object; fix or re-download it`);
  }
  return parsed as Record<string, unknown>;
}
