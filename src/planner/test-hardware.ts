/** A hand-built device with round numbers, so tests can compute expected times by hand. */
import type { HardwareSpec } from './hardware.js';
import type { ModelShape } from './model-shape.js';

/** 1,000 GB/s, 100 TFLOPS f16, 100 GB/s links with 10 µs latency, no derates, no overheads. */
export function testDevice(overrides: Partial<HardwareSpec> = {}): HardwareSpec {
  return {
    name: 'test-device',
    description: 'round numbers',
    kind: 'gpu',
    memoryGiB: 64,
    memoryBandwidthGBs: 1000,
    compute: { f16: 100 },
    devicesPerNode: 8,
    interconnect: { name: 'test-link', busBandwidthGBs: 100, latencyUs: 10 },
    network: { name: 'test-network', busBandwidthGBs: 10, latencyUs: 50 },
    efficiency: { memory: 1, compute: 1, overlap: 64 },
    runtime: {
      name: 'test',
      stepOverheadMs: 0,
      sequenceOverheadMs: 0,
      httpStepOverheadMs: 0,
      rankStepOverheadMs: 0,
      contendedStepOverheadMs: 0,
      activationBytes: 2,
      memoryUtilization: 1,
      reservedGiB: 0,
      maxNumSeqs: 1024,
      maxBatchTokens: 4096,
    },
    sources: {},
    ...overrides,
  };
}

/** 1,024 hidden, 4 layers, 8 heads of 128 (2 KV heads), SwiGLU 4,096, vocabulary 1,024: 2^24 + ... parameters. */
export const TEST_SHAPE: ModelShape = {
  name: 'test-model',
  numLayers: 4,
  hiddenSize: 1024,
  intermediateSize: 4096,
  vocabSize: 1024,
  tiedEmbeddings: false,
  contextLength: 4096,
  attention: { kind: 'gqa', numHeads: 8, numKvHeads: 2, headDim: 128 },
};
