/**
 * A Hugging Face model directory: config.json, safetensors weights (one file
 * or an index with shards) and, optionally, the tokenizer and generation
 * settings. Only JSON and safetensors headers are read when opening.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError, check, type ErrorCode } from '../core/errors.js';
import { SafetensorsStore } from './safetensors.js';

export interface HfDirectory {
  dir: string;
  /** config.json as parsed; turning it into a ModelConfig is the model layer's job. */
  config: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  tokenizerJsonPath?: string;
  tokenizerConfig?: Record<string, unknown>;
  store: SafetensorsStore;
}

export function openHfDirectory(dir: string): HfDirectory {
  if (!existsSync(dir)) {
    throw new TesseraError('TESSERA_ERR_FILE_NOT_FOUND', `${dir} does not exist; check the model path`);
  }
  check(statSync(dir).isDirectory(), 'TESSERA_ERR_INVALID_ARGUMENT', `${dir} is not a directory; a Hugging Face model is a folder with config.json`);
  const configPath = join(dir, 'config.json');
  check(existsSync(configPath), 'TESSERA_ERR_BAD_CONFIG', `${dir} has no config.json; a Hugging Face model directory needs one`);
  const config = readJsonObject(configPath, 'TESSERA_ERR_BAD_CONFIG');
  const generationConfig = readOptionalJson(join(dir, 'generation_config.json'), 'TESSERA_ERR_BAD_CONFIG');
  const tokenizerConfig = readOptionalJson(join(dir, 'tokenizer_config.json'), 'TESSERA_ERR_TOKENIZER');
  const tokenizerJson = join(dir, 'tokenizer.json');
  const store = SafetensorsStore.open(dir);
  return {
    dir,
    config,
    store,
    ...(generationConfig && { generationConfig }),
    ...(existsSync(tokenizerJson) && { tokenizerJsonPath: tokenizerJson }),
    ...(tokenizerConfig && { tokenizerConfig }),
  };
}

/** True when `dir` looks like a Hugging Face model directory (has config.json). */
export function isHfDirectory(dir: string): boolean {
  return existsSync(join(dir, 'config.json')) && statSync(dir).isDirectory();
}

function readOptionalJson(path: string, code: ErrorCode): Record<string, unknown> | undefined {
  return existsSync(path) ? readJsonObject(path, code) : undefined;
}

function readJsonObject(path: string, code: ErrorCode): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TesseraError(code, `${path} is not valid JSON (${(error as Error).message}); fix or re-download it`, { cause: error });
  }
  check(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), code, `${path} must hold a JSON object; fix or re-download it`);
  return parsed as Record<string, unknown>;
}
