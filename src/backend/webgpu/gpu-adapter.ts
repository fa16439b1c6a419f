/**
 * Finding a WebGPU adapter through Dawn's Node binding (the `webgpu` npm
 * package), describing it (`tessera inspect --devices`), and opening a device
 * with the limits the kernels need. No adapter → TESSERA_ERR_NO_GPU_ADAPTER
 * with how to get one.
 */
import { TesseraError } from '../../core/errors.js';
import type { AdapterDescription } from './gpu-protocol.js';

/** Dawn's `create()` and the WebGPU globals (GPUBufferUsage, ...). */
interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

export const NO_ADAPTER_HINT =
  'install a GPU driver with Vulkan (NVIDIA, AMD, Intel) or Metal (macOS); with no GPU, Mesa\'s software Vulkan driver ' +
  '(lavapipe) works: on Debian add the bookworm-backports suite to apt\'s sources and run ' +
  '`apt-get install -t bookworm-backports mesa-vulkan-drivers` (Debian bookworm\'s own Mesa 22 is too old for Dawn)';

let dawn: DawnModule | undefined;

/** The binding, loaded once; its globals are installed on globalThis (GPUBufferUsage, GPUMapMode, ...). */
export async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (error) {
    throw new TesseraError(
      'TESSERA_ERR_BACKEND_UNAVAILABLE',
      `the WebGPU backend needs the 'webgpu' npm package (Dawn's Node binding), which did not load (${(error as Error).message}); run npm install`,
    );
  }
  Object.assign(globalThis, dawn.globals);
  return dawn;
}

export function describeAdapter(adapter: GPUAdapter): AdapterDescription {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof value === 'number') limits[key] = value;
  }
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    subgroupMinSize: Number((info as { subgroupMinSize?: number }).subgroupMinSize ?? 0),
    subgroupMaxSize: Number((info as { subgroupMaxSize?: number }).subgroupMaxSize ?? 0),
    features: [...adapter.features].map(String).sort(),
    limits,
  };
}

/** Every distinct adapter Dawn offers (by preference, and the software fallback). */
export async function listAdapters(flags: string[] = []): Promise<AdapterDescription[]> {
  const gpu = (await loadDawn()).create(flags);
  const found: AdapterDescription[] = [];
  const options: GPURequestAdapterOptions[] = [{ powerPreference: 'high-performance' }, { powerPreference: 'low-power' }, { forceFallbackAdapter: true }];
  for (const option of options) {
    const adapter = await gpu.requestAdapter(option).catch(() => null);
    if (!adapter) continue;
    const description = describeAdapter(adapter);
    if (!found.some((a) => a.description === description.description && a.device === description.device && a.vendor === description.vendor)) found.push(description);
  }
  return found;
}

/**
 * Instances whose devices are open. Dawn tears an instance down when its JS
 * object is collected, and a device outliving its instance crashes the
 * process, so each device's instance is kept here.
 */
const liveInstances = new Set<GPU>();

export interface OpenedDevice {
  device: GPUDevice;
  adapter: AdapterDescription;
}

/** The adapter's device with the largest buffers and bindings it allows. */
export async function openDevice(flags: string[], powerPreference: GPUPowerPreference = 'high-performance'): Promise<OpenedDevice> {
  const gpu = (await loadDawn()).create(flags);
  liveInstances.add(gpu);
  const adapter = await gpu.requestAdapter({ powerPreference });
  if (!adapter) throw new TesseraError('TESSERA_ERR_NO_GPU_ADAPTER', `no WebGPU adapter was found; ${NO_ADAPTER_HINT}`);
  const wanted = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxStorageBuffersPerShaderStage'] as const;
  const requiredLimits: Record<string, number> = {};
  for (const name of wanted) requiredLimits[name] = adapter.limits[name];
  const features = (['timestamp-query', 'subgroups'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  return { device, adapter: describeAdapter(adapter) };
}
