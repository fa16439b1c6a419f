import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TesseraError } from '../core/errors.js';
import { catalogHardware, catalogLink } from './hardware-catalog.js';
import { hardwareFromJson } from './hardware-json.js';
import { catalogModel } from './model-catalog.js';
import { planDeployment, type PlanInput } from './plan.js';
import { searchLayouts } from './search.js';
import { parseWhatIf, whatIf } from './what-if.js';

function input(overrides: Partial<PlanInput> = {}): PlanInput {
  return {
    shape: catalogModel('llama-3.1-70b'),
    hardware: catalogHardware('h100-sxm'),
    layout: { tp: 4, pp: 1, ep: 1, dp: 1 },
    weights: 'bf16',
    kv: 'bf16',
    workload: { inputLength: 1000, outputLength: 200, arrival: { kind: 'closed', concurrency: 1 }, burst: false },
    frontend: 'http',
    ...overrides,
  };
}

const coded = (code: string, pattern: RegExp) => (error: unknown): boolean =>
  error instanceof TesseraError && error.code === code && pattern.test(error.message);

test('a model too big for its layout is refused, saying what would fit', () => {
  assert.throws(() => planDeployment(input({ layout: { tp: 1, pp: 1, ep: 1, dp: 1 } })), coded('TESSERA_ERR_PLAN_DOES_NOT_FIT', /would fit with --tp 4/));
});

test('a split the model cannot take is refused with the constraint', () => {
  assert.throws(() => planDeployment(input({ layout: { tp: 3, pp: 1, ep: 1, dp: 1 } })), coded('TESSERA_ERR_SHARD_CONSTRAINT', /64 attention heads/));
  assert.throws(() => planDeployment(input({ layout: { tp: 4, pp: 1, ep: 2, dp: 1 } })), coded('TESSERA_ERR_SHARD_CONSTRAINT', /dense/));
  assert.throws(() => planDeployment(input({ devices: 3 })), coded('TESSERA_ERR_SHARD_CONSTRAINT', /--devices 3/));
});

test('one 70B decode on 4 H100s is bound by memory bandwidth; an offline batch by compute', () => {
  assert.equal(planDeployment(input()).bottleneck, 'memory-bandwidth');
  const offline = planDeployment(input({ weights: 'fp8', kv: 'fp8', workload: { inputLength: 2048, outputLength: 128, arrival: { kind: 'max' }, burst: false } }));
  assert.equal(offline.bottleneck, 'compute');
});

test('what-if: more memory bandwidth cuts a memory-bound TPOT, more link bandwidth barely moves it', () => {
  const { rows } = whatIf(input(), parseWhatIf('memory-bandwidth=2x,link-bandwidth=2'));
  const [memory, link] = rows;
  assert.equal(memory.knob, 'memory-bandwidth');
  assert.ok(memory.change.tpotMs < -0.3, `${memory.change.tpotMs}`);
  assert.ok(Math.abs(link.change.tpotMs) < 0.05, `${link.change.tpotMs}`);
  assert.throws(() => parseWhatIf('bandwidth=2x'), coded('TESSERA_ERR_INVALID_ARGUMENT', /knobs/));
});

test('search: the best-throughput layout under a TPOT target, and the fewest devices that meet it', () => {
  const base = input({ workload: { inputLength: 1000, outputLength: 200, arrival: { kind: 'closed', concurrency: 64 }, burst: false } });
  const best = searchLayouts(base, { maxDevices: 8, objective: 'throughput', maxTpotMs: 60 });
  assert.ok(best[0].result && !best[0].rejected);
  assert.ok(best[0].result.tpotMs <= 60);
  const fewest = searchLayouts(base, { maxDevices: 8, objective: 'devices', maxTpotMs: 60 });
  const accepted = fewest.filter((c) => !c.rejected);
  assert.ok(accepted.every((c) => (c.result?.devices ?? 0) >= (accepted[0].result?.devices ?? 0)));
  assert.ok(fewest.some((c) => c.rejected && /fit/.test(c.rejected)), 'tp 1 does not fit and says so');
});

test('a hardware JSON overrides a catalog device, and a bad one is a coded error', () => {
  const faster = hardwareFromJson({ base: 'h100-sxm', name: 'h100-fast', memoryBandwidthGBs: 6700 }, 'test.json');
  assert.equal(faster.memoryBandwidthGBs, 6700);
  assert.equal(faster.compute.fp8, catalogHardware('h100-sxm').compute.fp8);
  assert.ok(planDeployment(input({ hardware: faster })).tpotMs < planDeployment(input()).tpotMs);
  assert.throws(() => hardwareFromJson({ base: 'h100-sxm', memoryGiB: -1 }, 'bad.json'), coded('TESSERA_ERR_BAD_CONFIG', /memoryGiB/));
  assert.throws(() => catalogHardware('h900'), coded('TESSERA_ERR_UNKNOWN_HARDWARE', /h100-sxm/));
  assert.throws(() => catalogLink('carrier-pigeon'), coded('TESSERA_ERR_UNKNOWN_HARDWARE', /nvlink4/));
});

test('mixture of experts: expert parallelism adds all-to-alls, DeepSeek-V3 fits eight H200s in fp8', () => {
  const mixtral = input({ shape: catalogModel('mixtral-8x7b'), layout: { tp: 2, pp: 1, ep: 2, dp: 1 } });
  assert.ok(planDeployment(mixtral).decodeStep.networkMs > planDeployment({ ...mixtral, layout: { tp: 2, pp: 1, ep: 1, dp: 1 } }).decodeStep.networkMs);
  const deepseek = planDeployment(input({ shape: catalogModel('deepseek-v3'), hardware: catalogHardware('h200-sxm'), layout: { tp: 8, pp: 1, ep: 8, dp: 1 }, weights: 'fp8', kv: 'fp8' }));
  assert.ok(deepseek.memoryPerDeviceGiB < 141);
  assert.ok(deepseek.weightsPerDeviceGiB > 70 && deepseek.weightsPerDeviceGiB < 90, `${deepseek.weightsPerDeviceGiB}`);
});
