/**
 * The machine Tessera is developed on, as its committed benchmark JSON
 * (bench/results/) describes it: a 2-core AMD EPYC VM with AVX-512 VNNI,
 * running Tessera's native CPU backend. The numbers below are copied from the
 * files named beside them (self-consistency.test.ts reads the files and
 * checks them); `calibrateHost` turns them into the hardware profile.
 */
import { calibrateHost, type HostMeasurements } from './host-calibration.js';
import { catalogModel } from './model-catalog.js';

export const DEV_MEASUREMENTS: HostMeasurements = {
  name: 'dev-epyc-2core',
  description: "Tessera's development VM: 2 AMD EPYC cores (AVX-512 VNNI), Tessera's native CPU backend",
  cores: 2,
  memoryGiB: 23.5,
  shape: catalogModel('tinyllama-1.1b'),
  decodes: [
    { weights: 'q8_0', tokensPerSecond: 32.65, triadGBs: 46.1 },
    { weights: 'q4_0', tokensPerSecond: 61.28, triadGBs: 44.1 },
  ],
  prefills: [
    { weights: 'q8_0', promptLength: 128, tokensPerSecond: 244.3 },
    { weights: 'q8_0', promptLength: 512, tokensPerSecond: 238.0 },
    { weights: 'q4_0', promptLength: 128, tokensPerSecond: 264.6 },
    { weights: 'q4_0', promptLength: 512, tokensPerSecond: 238.9 },
  ],
  kernelInt8Gops: 536.6,
  kernelF16Gops: 130.3,
  singleThreadDecode: 19.13,
  tensorParallelWaitMsPerToken: 3.673,
  pipelineDecode: 17.69,
  pipelineAllInFlight: { sequences: 8, tokensPerSecond: 24.92 },
  serveTpotMs: { c1: 40.4, c16: 80.8 },
  unixAllReduceGBs: 1.699,
  tcpAllReduceGBs: 1.214,
  sources: {
    decodes: 'bench/results/engine-2026-11-26T05-44-46-665Z.json (q8_0) and engine-2026-11-26T05-32-25-061Z.json (q4_0): tessera.decode, memoryBandwidthGBs',
    prefills: 'the same two files: tessera.prefill',
    kernelInt8Gops: 'bench/results/kernels-this-build-2026-11-26T05-51-09-135Z.json: best q8_0/q4_0 batch GOP/s',
    kernelF16Gops: 'the same file: best f16 batch GOP/s',
    singleThreadDecode: 'bench/results/parallel-decode-2026-11-26T03-47-42-538Z.json and parallel-decode-2026-11-26T05-47-29-143Z.json: tp1 x 1 thread, mean of the two',
    tensorParallelWaitMsPerToken: 'the same files: tp2 x 1 thread, perTokenOnReportingRank.waitMs, mean',
    pipelineDecode: 'the same files: pp2 x 1 thread, mean',
    pipelineAllInFlight: 'bench/results/parallel-microbatch-2026-11-26T05-29-50-126Z.json, ...T05-30-12-352Z.json, ...T05-46-55-879Z.json: allInFlightTokensPerSecond, mean of the three',
    serveTpotMs: 'bench/results/serve-2026-11-26T05-48-53.json and serve-2026-11-26T05-49-14.json: tpotMs.p50, mean of the two',
    unixAllReduceGBs: 'bench/results/comm-unix-2ranks-2026-11-26T03-34-16-935Z.json: all_reduce busGBps at 4 MiB',
    tcpAllReduceGBs: 'bench/results/comm-tcp-2ranks-2026-11-26T03-35-00-262Z.json: all_reduce busGBps at 4 MiB',
    overlap: 'p = 2: the pp 2 micro-batch run and 16-stream serving, the measured steps nearest the ridge point, are matched with it; the ideal roofline (p = ∞) overestimates them',
  },
};

export const DEV_MACHINE = calibrateHost(DEV_MEASUREMENTS);
