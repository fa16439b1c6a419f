#!/usr/bin/env node
// Two builds of the native addon in one process, their q8_0 matmuls timed
// turn about: the way to compare a kernel change on a machine whose speed
// drifts by 10-40% from minute to minute (separate runs a minute apart
// disagree more than most kernel changes differ). Each side loads the same
// 22 weights of 5632 × 2048 (TinyLlama's FFN, 270 MB: streamed from
// memory) and runs every token count 16 times, A then B, then B then A; the
// figure is the median. Run it with the same build twice first: B/A stays
// within about 1% (0.997 here). Writes bench/results/kernel-ab-<date>.json
// (every repetition of both sides, the medians, the machine).
//
//   cp native/build/Release/tessera_native.node /tmp/a.node   # before the change
//   (edit, node native/install.mjs --required)
//   node bench/kernel-ab.mjs /tmp/a.node native/build/Release/tessera_native.node [tokens=1,8,9,16,17] [threads=1]
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { describeMachine } from '../dist/bench/machine.js';

const require = createRequire(import.meta.url);
const [pathA, pathB, tokensList = '1,8,9,16,17', threadsText = '1'] = process.argv.slice(2);
if (!pathA || !pathB) {
  console.error('usage: node bench/kernel-ab.mjs A.node B.node [tokens=1,8,9,16,17] [threads=1]');
  process.exit(2);
}
const ROWS = 5632;
const COLS = 2048;
const WEIGHTS = 22;
const REPETITIONS = 16;
const Q8_0 = 3; // the addon's dtype code (native/src/kernels/kernel-table.h)

/** q8_0 blocks: an f16 scale, then 32 quants of varied values (the speed does not depend on them). */
const bytes = new Uint8Array((34 * ROWS * COLS) / 32);
for (let at = 0; at < bytes.length; at += 34) {
  bytes[at] = 0x1f;
  bytes[at + 1] = 0x21;
  for (let k = 2; k < 34; k++) bytes[at + k] = (at * 7 + k) & 0xff;
}
const sides = [pathA, pathB].map((path) => {
  const addon = require(resolve(path));
  const { context } = addon.createContext(Number(threadsText), 'auto');
  return { addon, context, weights: Array.from({ length: WEIGHTS }, () => addon.loadWeight(context, Q8_0, ROWS, COLS, bytes, true)) };
});
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
const results = [];
for (const tokens of tokensList.split(',').map(Number)) {
  /** [tokens, COLS] */
  const x = Float32Array.from({ length: COLS * tokens }, (_, i) => Math.sin(i));
  const out = new Float32Array(ROWS * tokens);
  const times = [[], []];
  for (let repetition = 0; repetition < REPETITIONS; repetition++) {
    for (const side of repetition % 2 ? [1, 0] : [0, 1]) {
      const { addon, context, weights } = sides[side];
      const started = performance.now();
      for (const weight of weights) addon.matmul(context, weight, x, tokens, false, out);
      times[side].push(performance.now() - started);
    }
  }
  const [a, b] = times.map(median);
  results.push({ tokens, medianMs: { a, b }, ratio: b / a, repetitionsMs: { a: times[0], b: times[1] } });
  console.log(`${String(tokens).padStart(3)} tokens: A ${a.toFixed(1)} ms  B ${b.toFixed(1)} ms  B/A ${(b / a).toFixed(3)}`);
}
const date = new Date().toISOString();
const folder = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'results');
mkdirSync(folder, { recursive: true });
const file = join(folder, `kernel-ab-${date.replace(/[:.]/g, '-')}.json`);
const shape = { dtype: 'q8_0', rows: ROWS, cols: COLS, weights: WEIGHTS, repetitions: REPETITIONS };
writeFileSync(file, `${JSON.stringify({ benchmark: 'kernel-ab', date, a: resolve(pathA), b: resolve(pathB), threads: Number(threadsText), shape, machine: describeMachine(), results }, null, 1)}\n`);
console.log(`wrote ${file}`);
