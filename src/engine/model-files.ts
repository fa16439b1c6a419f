/**
 * Opens a model path in whatever format it is (GGUF file, Hugging Face
 * directory, llama2.c checkpoint) as one normalized triple: config, lazy
 * tensor store, tokenizer.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import { GgufStore } from '../format/gguf-reader.js';
import { openHfDirectory, type HfDirectory } from '../format/hf-directory.js';
import { Llama2cStore } from '../format/llama2c.js';
import { detectModelFormat } from '../format/model-format.js';
import { isSafetensorsFile, openSafetensorsModelFile } from '../format/safetensors-model-file.js';
import type { ModelFormat, TensorStore } from '../format/tensor-store.js';
import { configFromGguf } from '../model/config-from-gguf.js';
import { configFromHf } from '../model/config-from-hf.js';
import { configFromLlama2c } from '../model/config-from-llama2c.js';
import { tokenizerFromGguf } from '../tokenizer/gguf-tokenizer.js';
import { loadHfTokenizer } from '../tokenizer/hf-tokenizer.js';
import { IdsOnlyTokenizer } from '../tokenizer/ids-only-tokenizer.js';
import { tokenizerFromLlama2c } from '../tokenizer/llama2c-tokenizer.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export interface ModelFiles {
  path: string;
  format: ModelFormat;
  config: ModelConfig;
  store: TensorStore;
  tokenizer: Tokenizer;
  /** Key/values worth showing in `tessera inspect` (GGUF metadata, config.json). */
  metadata: Record<string, unknown>;
}

export function openModelFiles(path: string, options: { tokenizerPath?: string } = {}): ModelFiles {
  // NAME.safetensors + NAME_config.json (ids-only test checkpoints such as the MoE fixtures).
  if (isSafetensorsFile(path)) return openHf(path, openSafetensorsModelFile(path));
  const kind = detectModelFormat(path);
  if (kind === 'gguf') return openGguf(path);
  if (kind === 'hf') return openHf(path);
  return openLlama2c(path, options.tokenizerPath);
}

function openGguf(path: string): ModelFiles {
  const store = new GgufStore(path);
  const names = new Set(store.list().map((info) => info.name));
  const embedding = store.get('token_embd.weight');
  const config = configFromGguf({ metadata: store.header.metadata, tensorNames: names, embeddingRows: embedding?.shape[0] ?? 0 });
  const tokenizer = tokenizerFromGguf(store.header.metadata);
  return { path, format: 'gguf', config, store, tokenizer, metadata: printableMetadata(store.header.metadata) };
}

function openHf(path: string, directory: HfDirectory = openHfDirectory(path)): ModelFiles {
  const names = new Set(directory.store.list().map((info) => info.name));
  const config = configFromHf({ config: directory.config, generationConfig: directory.generationConfig, tensorNames: names });
  // Without tokenizer.json the model still runs on token ids; text use fails with a coded error.
  const tokenizer = directory.tokenizerJsonPath
    ? loadHfTokenizer(directory.tokenizerJsonPath, directory.tokenizerConfig)
    : new IdsOnlyTokenizer({ vocabSize: config.vocabSize, bosId: config.bosTokenId, eosIds: config.eosTokenIds, modelPath: path });
  return { path, format: 'safetensors', config, store: directory.store, tokenizer, metadata: directory.config };
}

function openLlama2c(path: string, tokenizerPath: string | undefined): ModelFiles {
  const store = new Llama2cStore(path);
  const config = configFromLlama2c(store.header);
  const tokenizerFile = tokenizerPath ?? findLlama2cTokenizer(path);
  const tokenizer = tokenizerFromLlama2c(tokenizerFile, config.vocabSize);
  return { path, format: 'llama2c', config, store, tokenizer, metadata: { ...store.header } };
}

/** llama2.c keeps its tokenizer apart: tokenizer.bin, or the one tok*.bin beside the checkpoint. */
function findLlama2cTokenizer(modelPath: string): string {
  const folder = dirname(modelPath);
  if (existsSync(join(folder, 'tokenizer.bin'))) return join(folder, 'tokenizer.bin');
  const candidates = readdirSync(folder).filter((name) => /^tok.*\.bin$/.test(name));
  if (candidates.length === 1) return join(folder, candidates[0]);
  throw new TesseraError(
    'TESSERA_ERR_TOKENIZER',
    `a llama2.c checkpoint needs its tokenizer file; pass --tokenizer PATH (found ${candidates.length} tok*.bin files beside ${modelPath})`,
  );
}

/** GGUF metadata without the large vocabulary arrays. */
function printableMetadata(metadata: ReadonlyMap<string, unknown>): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const [key, value] of metadata) {
    if (Array.isArray(value) && value.length > 16) shown[key] = `[${value.length} values]`;
    else shown[key] = typeof value === 'bigint' ? Number(value) : value;
  }
  return shown;
}
