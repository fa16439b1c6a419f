/**
 * Devices `tessera plan --hardware NAME` knows. Peaks are the vendors' spec
 * sheets (dense rates, no sparsity); link bus bandwidths are nccl-tests
 * figures; efficiencies and runtime overheads were fitted to the published
 * measurements marked "calibration" in docs/planner-validation.md. Every
 * number's source is in `sources` and in docs/planner.md.
 */
import { TesseraError } from '../core/errors.js';
import type { Efficiency, HardwareSpec, LinkSpec, RuntimeCosts } from './hardware.js';
import { DEV_MACHINE } from './dev-machine.js';

const NVLINK3: LinkSpec = { name: 'nvlink3', busBandwidthGBs: 200, latencyUs: 10 };
const NVLINK4: LinkSpec = { name: 'nvlink4', busBandwidthGBs: 370, latencyUs: 10 };
const NVLINK5: LinkSpec = { name: 'nvlink5', busBandwidthGBs: 740, latencyUs: 10 };
const XGMI: LinkSpec = { name: 'xgmi', busBandwidthGBs: 300, latencyUs: 12 };
const INFINIBAND_NDR: LinkSpec = { name: 'infiniband-ndr', busBandwidthGBs: 45, latencyUs: 15 };
const THUNDERBOLT5: LinkSpec = { name: 'thunderbolt5', busBandwidthGBs: 8, latencyUs: 50 };

/** Links `--interconnect` / `--network` may name. */
export const LINKS: readonly LinkSpec[] = [
  NVLINK3,
  NVLINK4,
  NVLINK5,
  XGMI,
  { name: 'pcie4', busBandwidthGBs: 20, latencyUs: 15 },
  { name: 'pcie5', busBandwidthGBs: 40, latencyUs: 12 },
  INFINIBAND_NDR,
  { name: 'ethernet-100g', busBandwidthGBs: 10, latencyUs: 30 },
  { name: 'ethernet-10g', busBandwidthGBs: 1.1, latencyUs: 60 },
  THUNDERBOLT5,
  DEV_MACHINE.interconnect,
];

/** How close a current GPU serving runtime comes to the peaks (fitted: docs/planner.md). */
const GPU_EFFICIENCY: Efficiency = { memory: 0.7, compute: 0.55, overlap: 4 };

/** A vLLM / TensorRT-LLM class runtime on a datacenter GPU (CUDA graphs, paged KV, bf16 activations). */
const GPU_RUNTIME: RuntimeCosts = {
  name: 'vLLM / TensorRT-LLM class GPU runtime',
  stepOverheadMs: 2,
  sequenceOverheadMs: 0.004,
  httpStepOverheadMs: 0,
  rankStepOverheadMs: 0,
  contendedStepOverheadMs: 0,
  activationBytes: 2,
  memoryUtilization: 0.9,
  reservedGiB: 4,
  maxNumSeqs: 256,
  maxBatchTokens: 8192,
};

/** llama.cpp's Metal backend on Apple silicon (one sequence at a time in its benchmarks). */
const METAL_RUNTIME: RuntimeCosts = {
  name: 'llama.cpp Metal backend',
  stepOverheadMs: 1,
  sequenceOverheadMs: 0,
  httpStepOverheadMs: 0,
  rankStepOverheadMs: 0,
  contendedStepOverheadMs: 0,
  activationBytes: 4,
  memoryUtilization: 0.75,
  reservedGiB: 2,
  maxNumSeqs: 16,
  maxBatchTokens: 2048,
};

const NVIDIA_SPEC = 'NVIDIA datasheet';
const GPU_SOURCES = {
  interconnect: 'nccl-tests busbw: NVIDIA/nccl-tests#149 and #178 (A100, ~200-208 GB/s), #212 (H100: 370 GB/s NVLink busbw without NVLS, per NCCL maintainer), #272 (H200 ~475 GB/s with NVLS); latency assumed (NCCL small-message all-reduce on NVLink, order 10 us)',
  network: 'InfiniBand NDR 400 Gb/s per GPU = 50 GB/s line rate, ~90% achieved by NCCL',
  efficiency: 'memory 0.7 fitted to validation row 25 (vLLM, H200, batch-8 decode), compute 0.55 to row 13 (TensorRT-LLM, H100, FP8 prefill-heavy); overlap 4 assumed',
  runtime: 'vLLM defaults (gpu_memory_utilization 0.9, max_num_seqs 256, max_num_batched_tokens 8192); 2 ms step overhead fitted to validation row 25; 4 GiB reserved and 4 us per sequence assumed',
};

export const HARDWARE: readonly HardwareSpec[] = [
  {
    name: 'a100-80g-sxm',
    description: 'NVIDIA A100 80GB SXM4',
    kind: 'gpu',
    memoryGiB: 80,
    memoryBandwidthGBs: 2039,
    compute: { f16: 312, int8: 624 },
    devicesPerNode: 8,
    interconnect: NVLINK3,
    network: INFINIBAND_NDR,
    // fp16 GEMMs on Ampere reach more of their (lower) peak: fitted to the calibration row of the A100.
    efficiency: { ...GPU_EFFICIENCY, compute: 0.68 },
    runtime: GPU_RUNTIME,
    sources: {
      memoryGiB: `${NVIDIA_SPEC} A100 (80GB HBM2e)`,
      memoryBandwidthGBs: `${NVIDIA_SPEC} A100 80GB SXM: 2,039 GB/s`,
      compute: `${NVIDIA_SPEC} A100: BF16 312 TFLOPS, INT8 624 TOPS dense`,
      ...GPU_SOURCES,
      efficiency: 'compute 0.68 fitted to validation row 9 (TensorRT-LLM, A100, FP16 prefill); memory as the H100',
    },
  },
  {
    name: 'h100-sxm',
    description: 'NVIDIA H100 SXM5 80GB',
    kind: 'gpu',
    memoryGiB: 80,
    memoryBandwidthGBs: 3350,
    compute: { f16: 989, fp8: 1979, int8: 1979 },
    devicesPerNode: 8,
    interconnect: NVLINK4,
    network: INFINIBAND_NDR,
    efficiency: GPU_EFFICIENCY,
    runtime: GPU_RUNTIME,
    sources: { memoryGiB: `${NVIDIA_SPEC} H100 SXM (80GB HBM3)`, memoryBandwidthGBs: `${NVIDIA_SPEC} H100 SXM: 3.35 TB/s`, compute: `${NVIDIA_SPEC} H100 SXM: BF16 989 TFLOPS, FP8 1,979 TFLOPS, INT8 1,979 TOPS dense (half the sparse figures)`, ...GPU_SOURCES },
  },
  {
    name: 'h200-sxm',
    description: 'NVIDIA H200 SXM 141GB',
    kind: 'gpu',
    memoryGiB: 141,
    memoryBandwidthGBs: 4800,
    compute: { f16: 989, fp8: 1979, int8: 1979 },
    devicesPerNode: 8,
    interconnect: NVLINK4,
    network: INFINIBAND_NDR,
    efficiency: GPU_EFFICIENCY,
    runtime: GPU_RUNTIME,
    sources: { memoryGiB: `${NVIDIA_SPEC} H200 SXM (141GB HBM3e)`, memoryBandwidthGBs: `${NVIDIA_SPEC} H200 SXM: 4.8 TB/s`, compute: `${NVIDIA_SPEC} H200 SXM: same tensor cores as H100 SXM`, ...GPU_SOURCES },
  },
  {
    name: 'b200',
    description: 'NVIDIA B200 (DGX B200, 180GB)',
    kind: 'gpu',
    memoryGiB: 180,
    memoryBandwidthGBs: 8000,
    compute: { f16: 2250, fp8: 4500, fp4: 9000, int8: 4500 },
    devicesPerNode: 8,
    interconnect: NVLINK5,
    network: INFINIBAND_NDR,
    efficiency: GPU_EFFICIENCY,
    runtime: GPU_RUNTIME,
    sources: {
      memoryGiB: 'NVIDIA DGX B200 datasheet: 1,440 GB for 8 GPUs',
      memoryBandwidthGBs: 'NVIDIA DGX B200 datasheet: 64 TB/s for 8 GPUs',
      compute: `${NVIDIA_SPEC} HGX B200: FP4 18, FP8 9, BF16 4.5 PFLOPS with sparsity per GPU; dense is half`,
      ...GPU_SOURCES,
      interconnect: 'NVLink 5: 1.8 TB/s per GPU (twice NVLink 4); busbw taken as twice the H100 figure of NVIDIA/nccl-tests#212',
    },
  },
  {
    name: 'mi300x',
    description: 'AMD Instinct MI300X 192GB',
    kind: 'gpu',
    memoryGiB: 192,
    memoryBandwidthGBs: 5300,
    compute: { f16: 1307, fp8: 2615, int8: 2615 },
    devicesPerNode: 8,
    interconnect: XGMI,
    network: INFINIBAND_NDR,
    // vLLM on ROCm (2024) reached far less of the peaks than on CUDA: fitted to the MI300X calibration rows.
    efficiency: { ...GPU_EFFICIENCY, memory: 0.45, compute: 0.2 },
    runtime: GPU_RUNTIME,
    sources: {
      memoryGiB: 'AMD Instinct MI300X datasheet: 192 GB HBM3',
      memoryBandwidthGBs: 'AMD Instinct MI300X datasheet: 5.3 TB/s',
      compute: 'AMD Instinct MI300X datasheet: FP16/BF16 1,307.4 TFLOPS, FP8 2,614.9 TFLOPS, INT8 2,614.9 TOPS dense',
      interconnect: 'AMD MI300X platform: 7 Infinity Fabric links, 896 GB/s aggregate per GPU (448 GB/s each way); busbw assumed ~2/3 of it as for NVLink',
      network: GPU_SOURCES.network,
      efficiency: 'memory 0.45 fitted to validation row 28 (vLLM on ROCm, batch 1), compute 0.2 to row 31 (batch 256)',
      runtime: GPU_SOURCES.runtime,
    },
  },
  appleSilicon('m2-ultra', 'Apple M2 Ultra (76-core GPU)', 192, 800, 27.2),
  appleSilicon('m3-ultra', 'Apple M3 Ultra (80-core GPU)', 512, 819, 28.4),
  appleSilicon('m4-max', 'Apple M4 Max (40-core GPU)', 128, 546, 18.4),
  DEV_MACHINE,
];

function appleSilicon(name: string, description: string, memoryGiB: number, bandwidth: number, tflops: number): HardwareSpec {
  return {
    name,
    description,
    kind: 'unified',
    memoryGiB,
    memoryBandwidthGBs: bandwidth,
    // Metal kernels dequantize GGUF blocks and multiply in half/float: one rate for every format.
    compute: { f16: tflops },
    devicesPerNode: 1,
    interconnect: THUNDERBOLT5,
    network: THUNDERBOLT5,
    efficiency: { memory: 0.59, compute: 0.6, overlap: 4 },
    runtime: METAL_RUNTIME,
    sources: {
      memoryGiB: `Apple tech specs (${description}): up to ${memoryGiB} GB unified memory`,
      memoryBandwidthGBs: `Apple tech specs (${description}): ${bandwidth} GB/s memory bandwidth`,
      compute: `${tflops} FP32 TFLOPS of the GPU (cores x 128 ALUs x 2 x clock; Apple publishes no figure); f16 runs at the same rate`,
      interconnect: 'Thunderbolt 5: 80 Gb/s = 10 GB/s line rate, about 8 achieved; latency assumed',
      network: 'as interconnect',
      efficiency: 'memory 0.59 fitted to validation row 32 (llama.cpp Q8_0 decode, M2 Ultra), compute 0.6 to row 34 (F16 prefill); the M3 Ultra and M4 Max share the fit',
      runtime: 'llama.cpp defaults (n_batch 2048); 1 ms step overhead assumed',
    },
  };
}

export function hardwareNames(): string[] {
  return HARDWARE.map((device) => device.name);
}

export function catalogHardware(name: string): HardwareSpec {
  const found = HARDWARE.find((device) => device.name === name.toLowerCase());
  if (!found) {
    throw new TesseraError('TESSERA_ERR_UNKNOWN_HARDWARE', `unknown hardware "${name}": give a JSON file or one of this-machine, ${hardwareNames().join(', ')}`);
  }
  return found;
}

export function catalogLink(name: string): LinkSpec {
  const found = LINKS.find((link) => link.name === name.toLowerCase());
  if (!found) throw new TesseraError('TESSERA_ERR_UNKNOWN_HARDWARE', `unknown link "${name}": one of ${LINKS.map((link) => link.name).join(', ')}`);
  return found;
}
