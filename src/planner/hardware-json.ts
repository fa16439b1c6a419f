/**
 * A hardware profile from JSON: either a whole `HardwareSpec`, or
 * `{"base": "h100-sxm", ...}` overriding some fields of a catalog device
 * (nested objects merge). Numbers are checked; a bad file is a coded error.
 */
import { TesseraError } from '../core/errors.js';
import type { HardwareSpec } from './hardware.js';
import { catalogHardware } from './hardware-catalog.js';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function merge(base: Json, override: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(override)) out[key] = isObject(value) && isObject(base[key]) ? merge(base[key] as Json, value) : value;
  return out;
}

function bad(source: string, message: string): never {
  throw new TesseraError('TESSERA_ERR_BAD_CONFIG', `${source}: ${message}`);
}

function positive(spec: Json, path: string, source: string): void {
  const value = path.split('.').reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), spec);
  if (typeof value !== 'number' || !(value > 0)) bad(source, `"${path}" must be a positive number`);
}

const REQUIRED = [
  'memoryGiB',
  'memoryBandwidthGBs',
  'compute.f16',
  'devicesPerNode',
  'interconnect.busBandwidthGBs',
  'interconnect.latencyUs',
  'network.busBandwidthGBs',
  'network.latencyUs',
  'efficiency.memory',
  'efficiency.compute',
  'efficiency.overlap',
  'runtime.memoryUtilization',
  'runtime.activationBytes',
  'runtime.maxNumSeqs',
  'runtime.maxBatchTokens',
];

export function hardwareFromJson(json: unknown, source: string): HardwareSpec {
  if (!isObject(json)) bad(source, 'a hardware profile is a JSON object');
  const base = typeof json['base'] === 'string' ? (catalogHardware(json['base']) as unknown as Json) : {};
  const spec = merge(base, { ...json, sources: { ...(isObject(base['sources']) ? base['sources'] : {}), profile: source } });
  delete spec['base'];
  if (typeof spec['name'] !== 'string') spec['name'] = source;
  if (spec['kind'] !== 'gpu' && spec['kind'] !== 'cpu' && spec['kind'] !== 'unified') bad(source, '"kind" must be gpu, cpu or unified');
  for (const path of REQUIRED) positive(spec, path, source);
  return spec as unknown as HardwareSpec;
}
