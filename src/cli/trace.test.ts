/**
 * `--trace FILE` as a user runs it, on stories260K (5 layers, 8 heads, 4 KV
 * heads): the file is Chrome trace JSON whose backend op spans sit inside
 * their rank's step spans, on one process and on a --tp 2 mesh beside the
 * message spans, and tracing changes no output; on the mesh, the LM head's
 * exchange a step is each slice's best for greedy steps and the logits'
 * slices for sampled ones.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixture, projectRoot } from '../testing/fixtures.js';
import { startServeProcess } from '../testing/serve-process.js';
import { loadNativeComm } from '../parallel/native-comm.js';

const bin = join(projectRoot, 'bin', 'tessera.js');
const scratch = mkdtempSync(join(tmpdir(), 'tessera-trace-'));
const LAYERS = 5;
/** q, k, v, o, gate, up, down per layer, and the LM head. */
// Per layer: o and down alone, q/k/v and gate/up as one matmulMany each; plus the LM head.
const MATMULS_PER_STEP = 2 * LAYERS + 1;
const MATMUL_MANYS_PER_STEP = 2 * LAYERS;
/** Ops a model calls while loading, before any step. */
const LOAD_OPS = new Set(['loadWeight', 'loadWeightFromFile', 'readRows']);

interface Span {
  name: string;
  cat?: string;
  ph: string;
  ts: number;
  dur: number;
  pid: number;
  tid?: number;
  args?: Record<string, number | string>;
}

function tessera(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function readTrace(path: string): Span[] {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as { traceEvents: Span[] };
  assert.ok(Array.isArray(parsed.traceEvents));
  return parsed.traceEvents;
}

function generated(stdout: string): { ids: number[]; finishReason: string } {
  return JSON.parse(stdout) as { ids: number[]; finishReason: string };
}

/** Rank `pid`'s backend op spans; asserts each lies inside one of its steps, or (loads) before the first. */
function checkRank(events: Span[], pid: number): { steps: Span[]; ops: Span[] } {
  const steps = events.filter((event) => event.pid === pid && event.name === 'step');
  const ops = events.filter((event) => event.pid === pid && event.cat === 'backend');
  assert.ok(steps.length > 0, `rank ${pid} has step spans`);
  const firstStep = Math.min(...steps.map((step) => step.ts));
  for (const op of ops) {
    assert.equal(op.ph, 'X');
    assert.equal(op.tid, steps[0].tid, 'ops share the step track, so the viewer nests them');
    assert.ok(op.dur >= 0 && Number.isFinite(op.ts), `${op.name} has a time and a duration >= 0`);
    if (LOAD_OPS.has(op.name)) {
      assert.ok(op.ts + op.dur <= firstStep + 1, `${op.name} loads before the first step`);
      continue;
    }
    // 1 µs of slack: epoch microseconds near 2^50 round to a quarter microsecond.
    const parent = steps.find((step) => op.ts >= step.ts - 1 && op.ts + op.dur <= step.ts + step.dur + 1);
    assert.ok(parent, `rank ${pid}: ${op.name} at ${op.ts} lies inside a step`);
  }
  return { steps, ops };
}

function count(spans: Span[], name: string): number {
  return spans.filter((span) => span.name === name).length;
}

test('run --trace on one process: op spans nested in step spans, and the same tokens as without --trace', (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const args = ['run', '--model', model, '--prompt-ids', '1,403,407', '--max-tokens', '6', '--json'];
  const plain = tessera(...args);
  const trace = join(scratch, 'one.json');
  const traced = tessera(...args, '--trace', trace);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(traced.status, 0, traced.stderr);
  const output = generated(traced.stdout);
  assert.deepEqual(output.ids, generated(plain.stdout).ids);
  assert.equal(output.finishReason, 'length');

  const events = readTrace(trace);
  const { steps, ops } = checkRank(events, 0);
  // One step for the prompt, then one per generated token but the last.
  assert.equal(steps.length, output.ids.length);
  assert.deepEqual(steps.map((step) => step.args?.tokens), [3, ...output.ids.slice(1).map(() => 1)]);
  const stepsRun = steps.length;
  assert.equal(count(ops, 'matmul'), MATMULS_PER_STEP * stepsRun);
  assert.equal(count(ops, 'matmulMany'), MATMUL_MANYS_PER_STEP * stepsRun);
  for (const name of ['attentionBatch', 'writeKvBatch', 'siluMul']) assert.equal(count(ops, name), LAYERS * stepsRun, name);
  assert.equal(count(ops, 'rope'), 2 * LAYERS * stepsRun);
  assert.equal(count(ops, 'rmsNorm'), (2 * LAYERS + 1) * stepsRun);
  assert.equal(count(ops, 'embed'), stepsRun);
  assert.ok(ops.some((op) => LOAD_OPS.has(op.name)), 'weight loads are traced');
  // The prompt step's attention: 3 queries over positions 0..2, all 8 heads on this one rank.
  const attention = ops.find((op) => op.name === 'attentionBatch');
  assert.deepEqual(attention?.args, { numTokens: 3, segments: 1, numHeads: 8, numKvHeads: 4, headDim: 8, kvPositions: 3, kvBytes: 2 * 3 * 4 * 8 * 4 });
  const matmul = ops.find((op) => op.name === 'matmul');
  assert.equal(matmul?.args?.numTokens, 3);
  assert.equal(typeof matmul?.args?.shape, 'string');
  assert.ok(Number(matmul?.args?.weightBytes) > 0);
  assert.ok(events.some((event) => event.ph === 'M' && event.name === 'process_name' && event.pid === 0));
});

test('logits --trace on one process prints exactly the logits of an untraced run', (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const args = ['logits', '--model', model, '--prompt-ids', '1,403,407,261'];
  const plain = tessera(...args);
  const trace = join(scratch, 'logits.json');
  const traced = tessera(...args, '--trace', trace);
  assert.equal(traced.status, 0, traced.stderr);
  assert.equal(traced.stdout, plain.stdout);
  const { steps } = checkRank(readTrace(trace), 0);
  assert.equal(steps.length, 1);
});

test('run --tp 2 --trace: both ranks carry op spans inside their steps, beside their collectives (native spans, or send and receive spans)', (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const args = ['run', '--model', model, '--prompt-ids', '1,403,407', '--max-tokens', '4', '--json'];
  const plain = tessera(...args);
  const trace = join(scratch, 'tp2.json');
  // Bursts of 3: the last two decode steps ride in the first one's message (decode-burst.ts).
  const mesh = tessera(...args, '--tp', '2', '--transport', 'unix', '--trace', trace, '--decode-burst', '3');
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(mesh.status, 0, mesh.stderr);
  assert.deepEqual(generated(mesh.stdout).ids, generated(plain.stdout).ids);

  const events = readTrace(trace);
  for (const rank of [0, 1]) {
    const { steps, ops } = checkRank(events, rank);
    assert.equal(count(ops, 'matmul'), MATMULS_PER_STEP * steps.length, `rank ${rank} matmuls`);
    assert.equal(count(ops, 'matmulMany'), MATMUL_MANYS_PER_STEP * steps.length, `rank ${rank} matmulManys`);
    assert.equal(count(ops, 'attentionBatch'), LAYERS * steps.length, `rank ${rank} attention`);
    // Heads split by tensor parallelism: each rank attends with 4 of 8 query heads and 2 of 4 KV heads.
    const attention = ops.find((op) => op.name === 'attentionBatch');
    assert.equal(attention?.args?.numHeads, 4);
    assert.equal(attention?.args?.numKvHeads, 2);
    if (loadNativeComm()) {
      // The stage's collectives run natively: a span per all-reduce and all-gather, with bytes and the wait inside.
      assert.ok(events.some((event) => event.pid === rank && event.cat === 'collective' && event.name === 'all-reduce' && Number(event.args?.bytes) > 0), `rank ${rank} all-reduces`);
      assert.ok(events.some((event) => event.pid === rank && event.cat === 'collective' && event.name === 'all-gather'), `rank ${rank} all-gathers`);
    } else {
      assert.ok(events.some((event) => event.pid === rank && event.name === 'send' && Number(event.args?.bytes) > 0), `rank ${rank} sends`);
      assert.ok(events.some((event) => event.pid === rank && event.name === 'receive (wait)'), `rank ${rank} receives`);
    }
  }
  // The coordinator's own time: a send and a wait per step message (every rank step but a burst's later ones has one),
  // and the engine's work between steps.
  const driver = events.filter((event) => event.cat === 'driver');
  const rankSteps = events.filter((event) => event.pid === 0 && event.name === 'step' && event.args?.burst === undefined).length;
  assert.equal(events.filter((event) => event.pid === 0 && event.name === 'step' && event.args?.burst !== undefined).length, 2, 'the decode steps after the first, computed in its burst');
  assert.equal(driver.filter((event) => event.name === 'wait for ranks').length, rankSteps);
  assert.equal(driver.filter((event) => event.name === 'encode and send step').length, rankSteps);
  assert.ok(driver.some((event) => event.name === 'engine (schedule, sample)'), 'engine time between steps');
  assert.ok(driver.every((event) => (event.dur ?? -1) >= 0));
});

test('run --tp 2: a greedy step exchanges each vocabulary slice\'s best (8 bytes a row) instead of its logits, a sampled one gathers the logits; both print what one process prints', (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  if (!loadNativeComm()) return t.skip('the bytes are read from the native collectives\' spans');
  /** A rank's slice of one logit row: half of the 512-token vocabulary, float32. */
  const sliceBytes = (512 / 2) * 4;
  for (const sampling of [[], ['--temperature', '0.8', '--seed', '3']]) {
    const args = ['run', '--model', model, '--prompt-ids', '1,403,407', '--max-tokens', '6', '--json', ...sampling];
    const plain = tessera(...args);
    const trace = join(scratch, `picks-${sampling.length}.json`);
    const mesh = tessera(...args, '--tp', '2', '--transport', 'unix', '--trace', trace);
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(mesh.status, 0, mesh.stderr);
    assert.deepEqual(generated(mesh.stdout).ids, generated(plain.stdout).ids, sampling.join(' ') || 'greedy');
    const events = readTrace(trace);
    for (const rank of [0, 1]) {
      const steps = events.filter((event) => event.pid === rank && event.name === 'step').length;
      const gathered = events.filter((event) => event.pid === rank && event.cat === 'collective' && event.name === 'all-gather').map((event) => Number(event.args?.bytes));
      // One LM head exchange a step (one row each); the layers' gathers move hidden columns (128 bytes a token), neither size.
      const [expected, absent] = sampling.length === 0 ? [8, sliceBytes] : [sliceBytes, 8];
      assert.equal(gathered.filter((bytes) => bytes === expected).length, steps, `rank ${rank}: ${expected} bytes a step`);
      assert.ok(!gathered.includes(absent), `rank ${rank} never exchanged ${absent} bytes`);
    }
  }
});

test('serve --trace on one process writes the engine worker\'s steps and ops at shutdown', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const trace = join(scratch, 'serve.json');
  const server = await startServeProcess(['--model', model, '--port', '0', '--trace', trace]);
  try {
    const response = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, prompt: [1, 403, 407], max_tokens: 4, ignore_eos: true }),
    });
    assert.equal(response.status, 200);
  } finally {
    server.kill('SIGTERM');
  }
  assert.equal(await server.exited, 0, server.stderr());
  const { steps, ops } = checkRank(readTrace(trace), 0);
  // A prefill step, then one decode step per further token.
  assert.equal(steps.length, 4);
  assert.equal(count(ops, 'matmul'), MATMULS_PER_STEP * steps.length);
  assert.equal(count(ops, 'matmulMany'), MATMUL_MANYS_PER_STEP * steps.length);
});

test('--trace to a path that cannot be written is refused before any work, with a coded line', (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  for (const [path, reason] of [[join(scratch, 'missing', 'x.json'), /does not exist/], [scratch, /it is a directory/]] as const) {
    const result = tessera('run', '--model', model, '--max-tokens', '3', '--trace', path);
    assert.notEqual(result.status, 0);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^error TESSERA_ERR_INVALID_ARGUMENT: --trace .*: cannot write the trace there/);
    assert.match(result.stderr, reason);
  }
});

