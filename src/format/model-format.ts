/**
 * Which kind of model a path holds, judged from its first bytes (never its
 * name alone), so `--model X` works without a format flag.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { TesseraError } from '../core/errors.js';
import { isLlama2cCheckpoint } from './llama2c.js';

export type ModelSourceFormat = 'gguf' | 'hf' | 'llama2c';

const SUPPORTED = 'Tessera reads GGUF files, Hugging Face directories (config.json + safetensors) and llama2.c float32 .bin checkpoints';

export function detectModelFormat(path: string): ModelSourceFormat {
  if (!existsSync(path)) {
    throw new TesseraError('TESSERA_ERR_FILE_NOT_FOUND', `${path} does not exist; check the model path`);
  }
  if (statSync(path).isDirectory()) return 'hf';
  if (readMagic(path) === 'GGUF') return 'gguf';
  if (isLlama2cCheckpoint(path)) return 'llama2c';
  if (path.endsWith('.safetensors')) {
    throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `${path} is a lone safetensors file; pass the directory that holds it and its config.json`);
  }
  throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `${path} is not a model Tessera recognises; ${SUPPORTED}`);
}

function readMagic(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const bytes = Buffer.alloc(4);
    const n = readSync(fd, bytes, 0, 4, 0);
    return bytes.subarray(0, n).toString('latin1');
  } finally {
    closeSync(fd);
  }
}
