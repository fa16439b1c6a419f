// Micro-benchmark of the native matmul kernels (not a test): one GEMV per
// dtype at TinyLlama's FFN shapes (decode), and a 64-token batch (prefill),
// reported as weight GB/s and GOP/s next to this machine's STREAM triad
// bandwidth measured in the same run.
// Writes bench/results/kernels-[LABEL-]<date>.json. To compare two builds of
// the addon in one sitting, point TESSERA_NATIVE_ADDON at each and give a --label.
//   node bench/kernels.mjs [--threads N] [--isa avx512|avx2|scalar] [--float-activations] [--dtypes q8_0,q4_0]
//                          [--shapes 5632x2048] [--batch 16,64] [--label NAME] [--out bench/results]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeMachine } from '../dist/bench/machine.js';
import { NativeBackend } from '../dist/backend/native/native-backend.js';
import { byteSize } from '../dist/core/dtype.js';
import { f32ToF16, f32ToBf16 } from '../dist/core/half.js';

const { values: options } = parseArgs({
  options: {
    threads: { type: 'string', default: '0' },
    isa: { type: 'string', default: 'auto' },
    'float-activations': { type: 'boolean', default: false },
    dtypes: { type: 'string', default: 'f32,f16,bf16,q8_0,q4_0,q4_k,q6_k' },
    shapes: { type: 'string', default: '5632x2048,2048x5632' },
    batch: { type: 'string', default: '64' },
    label: { type: 'string', default: '' },
    out: { type: 'string', default: 'bench/results' },
  },
});

const backend = new NativeBackend({
  threads: Number(options.threads),
  isa: options.isa,
  floatActivations: options['float-activations'],
});

let seed = 12345;
function random() {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 4294967296;
}

/** Stored bytes of an [M, K] weight: random quants with sane scales, or random floats without denormals. */
function weightBytes(dtype, M, K) {
  const count = M * K;
  if (dtype === 'f32') return new Uint8Array(Float32Array.from({ length: count }, () => random() * 2 - 1).buffer);
  if (dtype === 'f16' || dtype === 'bf16') {
    const table = Uint16Array.from({ length: 4096 }, () => (dtype === 'f16' ? f32ToF16 : f32ToBf16)(random() * 2 - 1));
    const halves = new Uint16Array(count);
    for (let i = 0; i < count; i++) halves[i] = table[(random() * 4096) | 0];
    return new Uint8Array(halves.buffer);
  }
  const bytes = new Uint8Array(byteSize(dtype, count));
  for (let i = 0; i < bytes.length; i += 4) {
    const r = (random() * 4294967296) >>> 0;
    bytes[i] = r;
    bytes[i + 1] = r >>> 8;
    bytes[i + 2] = r >>> 16;
    bytes[i + 3] = r >>> 24;
  }
  const scale = f32ToF16(0.01);
  const setHalf = (offset) => {
    bytes[offset] = scale & 0xff;
    bytes[offset + 1] = scale >>> 8;
  };
  const layout = { q8_0: [34, [0]], q4_0: [18, [0]], q4_k: [144, [0, 2]], q6_k: [210, [208]] }[dtype];
  for (let block = 0; block < bytes.length; block += layout[0]) for (const at of layout[1]) setHalf(block + at);
  return bytes;
}

/** Fastest seconds of `run` over ~0.5 s of repetitions (this machine is shared and noisy; the minimum is the kernel). */
function time(run) {
  run();
  const samples = [];
  const deadline = performance.now() + 500;
  while (samples.length < 5 || (performance.now() < deadline && samples.length < 200)) {
    const start = performance.now();
    run();
    samples.push((performance.now() - start) / 1000);
  }
  return Math.min(...samples);
}

const bandwidth = backend.measureMemoryBandwidth();
console.log(`isa ${backend.isa}, ${backend.threads} threads, ${options['float-activations'] ? 'float' : '8-bit'} activations; STREAM triad ${bandwidth.toFixed(1)} GB/s`);
const batches = options.batch.split(',').map(Number);
console.log(`dtype   shape [M, K]    decode ms   GB/s  % triad${batches.map((n) => `   batch ${n} ms  GOP/s`).join('')}`);
const results = [];
for (const dtype of options.dtypes.split(',')) {
  for (const [M, K] of options.shapes.split(',').map((s) => s.split('x').map(Number))) {
    const bytes = weightBytes(dtype, M, K);
    // Copies that together overflow the last-level cache, so decode streams from DRAM as in a model.
    const copies = Math.max(1, Math.ceil((128 * 1024 * 1024) / bytes.length));
    const weights = Array.from({ length: copies }, () => backend.loadWeight(dtype, [M, K], bytes));
    const weight = weights[0];
    const x = Float32Array.from({ length: K }, () => random() * 2 - 1);
    let next = 0;
    const decode = time(() => backend.matmul(x, weights[next++ % copies], 1));
    const batched = batches.map((batch) => {
      const xs = Float32Array.from({ length: K * batch }, () => random() * 2 - 1);
      const seconds = time(() => backend.matmul(xs, weight, batch));
      return { tokens: batch, ms: seconds * 1e3, gops: (2 * M * K * batch) / seconds / 1e9 };
    });
    const gbs = bytes.length / decode / 1e9;
    results.push({ dtype, shape: [M, K], decodeMs: decode * 1e3, decodeGBs: gbs, batches: batched });
    console.log(
      `${dtype.padEnd(6)}  [${M}, ${K}]`.padEnd(24) +
        `${(decode * 1e3).toFixed(3).padStart(8)}  ${gbs.toFixed(1).padStart(6)}  ${((100 * gbs) / bandwidth).toFixed(0).padStart(6)}%` +
        batched.map((b) => `   ${b.ms.toFixed(2).padStart(10)}  ${b.gops.toFixed(1).padStart(6)}`).join(''),
    );
  }
}

const date = new Date().toISOString();
mkdirSync(options.out, { recursive: true });
const file = join(options.out, `kernels-${options.label ? `${options.label}-` : ''}${date.replace(/[:.]/g, '-')}.json`);
const addon = process.env.TESSERA_NATIVE_ADDON ?? 'native/build/Release/tessera_native.node';
writeFileSync(file, `${JSON.stringify({ benchmark: 'kernels', date, label: options.label, addon, isa: backend.isa, threads: backend.threads, floatActivations: options['float-activations'], memoryBandwidthGBs: bandwidth, machine: describeMachine(), results }, null, 1)}\n`);
console.log(`wrote ${file}`);
