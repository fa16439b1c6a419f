/**
 * Where `tessera plan` gets its model and hardware: catalog names, model
 * files (read through the format and model layers, since the planner itself
 * imports only core) and hardware JSON files.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { byteSize, type DType } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import { openModelFiles } from '../engine/model-files.js';
import { matrixShape } from '../format/tensor-store.js';
import { configFromHf } from '../model/config-from-hf.js';
import { DEV_MACHINE } from '../planner/dev-machine.js';
import type { HardwareSpec } from '../planner/hardware.js';
import { catalogHardware } from '../planner/hardware-catalog.js';
import { hardwareFromJson } from '../planner/hardware-json.js';
import { findCatalogModel, modelNames } from '../planner/model-catalog.js';
import type { ModelShape } from '../planner/model-shape.js';
import type { WeightDtype } from '../planner/precision.js';
import { isDeepseekConfig, shapeFromDeepseekConfig, shapeFromModelConfig } from '../planner/shape-from-config.js';

export interface ModelSource {
  readonly shape: ModelShape;
  /** The weights' format when the file says (GGUF). */
  readonly weights?: WeightDtype;
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_BAD_CONFIG', `${path} is not readable JSON: ${(error as Error).message}`);
  }
}

/** The GGUF file's format: the dtype holding most matrix bytes (Q4_K with Q6_K is llama.cpp's Q4_K_M). */
function ggufWeights(dtypeBytes: Map<DType, number>): WeightDtype | undefined {
  const [top] = [...dtypeBytes.entries()].sort((a, b) => b[1] - a[1]);
  if (!top) return undefined;
  const map: Record<DType, WeightDtype> = { f32: 'f32', f16: 'fp16', bf16: 'bf16', q8_0: 'q8_0', q4_0: 'q4_0', q4_k: 'q4_k_m', q6_k: 'q4_k_m' };
  return map[top[0]];
}

function fromModelFile(path: string): ModelSource {
  const files = openModelFiles(path);
  files.store.close();
  const bytes = new Map<DType, number>();
  for (const info of files.store.list()) {
    if (info.shape.length < 2) continue;
    const { rows, cols } = matrixShape(info.shape);
    bytes.set(info.dtype, (bytes.get(info.dtype) ?? 0) + byteSize(info.dtype, rows * cols));
  }
  const name = basename(path).replace(/\.gguf$/, '');
  return { shape: shapeFromModelConfig(files.config, name), weights: files.format === 'gguf' ? ggufWeights(bytes) : undefined };
}

function fromConfigJson(path: string): ModelSource {
  const config = readJson(path);
  const name = typeof config['_name_or_path'] === 'string' ? config['_name_or_path'] : basename(dirname(path));
  if (isDeepseekConfig(config)) return { shape: shapeFromDeepseekConfig(config, name) };
  return { shape: shapeFromModelConfig(configFromHf({ config, tensorNames: new Set() }), name) };
}

/** A catalog name, a config.json (or a folder holding one), a GGUF file or a model directory. */
export function resolveModel(text: string): ModelSource {
  const known = findCatalogModel(text);
  if (known) return { shape: known };
  if (!existsSync(text)) {
    throw new TesseraError('TESSERA_ERR_UNKNOWN_MODEL', `unknown model "${text}": give a config.json, a .gguf file, or one of ${modelNames().join(', ')}`);
  }
  if (text.endsWith('.json')) return fromConfigJson(text);
  if (statSync(text).isDirectory() && existsSync(join(text, 'config.json')) && !existsSync(join(text, 'model.safetensors'))) {
    const config = readJson(join(text, 'config.json'));
    if (isDeepseekConfig(config)) return { shape: shapeFromDeepseekConfig(config, basename(text)) };
  }
  return fromModelFile(text);
}

/** Where `tessera profile` leaves this machine's profile. */
export function localProfilePath(): string {
  return process.env['TESSERA_HARDWARE_PROFILE'] ?? join(homedir(), '.cache', 'tessera', 'hardware-profile.json');
}

export interface HardwareSource {
  readonly hardware: HardwareSpec;
  /** Said on stderr: which profile "this-machine" resolved to. */
  readonly note?: string;
}

/** A catalog name, `this-machine`, or a JSON profile. */
export function resolveHardware(text: string): HardwareSource {
  if (text === 'this-machine') {
    const path = localProfilePath();
    if (existsSync(path)) return { hardware: hardwareFromJson(readJson(path), path), note: `this-machine: the profile in ${path}` };
    return {
      hardware: DEV_MACHINE,
      note: `this-machine: no profile at ${path} yet; using ${DEV_MACHINE.name}, calibrated from bench/results/ (docs/planner.md)`,
    };
  }
  if (text.endsWith('.json') || existsSync(text)) {
    if (!existsSync(text)) throw new TesseraError('TESSERA_ERR_FILE_NOT_FOUND', `hardware profile ${text} does not exist`);
    return { hardware: hardwareFromJson(readJson(text), text) };
  }
  return { hardware: catalogHardware(text) };
}
