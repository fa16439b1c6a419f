/** `tessera plan`: predict TTFT, TPOT, throughput and memory of a deployment (src/planner). */
import { Option, type Command } from 'commander';
import { TesseraError } from '../../core/errors.js';
import { catalogLink } from '../../planner/hardware-catalog.js';
import type { HardwareSpec } from '../../planner/hardware.js';
import { planDeployment, type PlanInput } from '../../planner/plan.js';
import { KV_DTYPES, parseKvDtype, parseWeightDtype, WEIGHT_DTYPES, type KvDtype, type WeightDtype } from '../../planner/precision.js';
import { searchLayouts, type SearchObjective } from '../../planner/search.js';
import { parseWhatIf, whatIf } from '../../planner/what-if.js';
import type { Arrival } from '../../planner/workload.js';
import { numberOption } from '../model-options.js';
import { planText, searchText, whatIfText } from '../plan-report.js';
import { parsePdSplit, planDisaggregated } from '../../planner/disaggregation.js';
import { pdText } from '../plan-pd-report.js';
import { resolveHardware, resolveModel } from '../plan-sources.js';

interface PlanCliOptions {
  model: string;
  hardware: string;
  devices?: number;
  devicesPerNode?: number;
  interconnect?: string;
  network?: string;
  tp: number;
  pp: number;
  ep: number;
  dp: number;
  threads?: number;
  weightsDtype?: string;
  kvDtype?: string;
  inputLen: number;
  outputLen: number;
  concurrency?: string;
  qps?: number;
  burst?: boolean;
  frontend: 'http' | 'none';
  kvCacheGib?: number;
  maxNumSeqs?: number;
  maxBatchTokens?: number;
  search?: SearchObjective | true;
  maxTtftMs?: number;
  maxTpotMs?: number;
  maxDevices?: number;
  whatIf?: string;
  pd?: string | true;
  json?: boolean;
}

const whole = (name: string): ((value: string) => number) => numberOption(name, 1, 1e9, true);
const positive = (name: string): ((value: string) => number) => numberOption(name, 1e-9, 1e12);

function arrivalOf(options: PlanCliOptions): Arrival {
  if (options.qps !== undefined && options.concurrency !== undefined) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'give --concurrency or --qps, not both');
  }
  if (options.qps !== undefined) return { kind: 'poisson', qps: options.qps };
  if (options.concurrency === undefined || options.concurrency === 'max') return options.concurrency === 'max' ? { kind: 'max' } : { kind: 'closed', concurrency: 1 };
  return { kind: 'closed', concurrency: whole('--concurrency')(options.concurrency) };
}

/** The hardware with the command line's link and runtime overrides. */
function hardwareOf(base: HardwareSpec, options: PlanCliOptions): HardwareSpec {
  return {
    ...base,
    devicesPerNode: options.devicesPerNode ?? base.devicesPerNode,
    interconnect: options.interconnect ? catalogLink(options.interconnect) : base.interconnect,
    network: options.network ? catalogLink(options.network) : base.network,
    runtime: { ...base.runtime, maxNumSeqs: options.maxNumSeqs ?? base.runtime.maxNumSeqs, maxBatchTokens: options.maxBatchTokens ?? base.runtime.maxBatchTokens },
  };
}

/** Defaults: the file's format, else bf16 on accelerators and q8_0 on CPUs; the KV cache as Tessera (f32) on CPUs, else as the weights' 16-bit type. */
function dtypesOf(options: PlanCliOptions, hardware: HardwareSpec, fileWeights?: WeightDtype): { weights: WeightDtype; kv: KvDtype } {
  const weights = options.weightsDtype ? parseWeightDtype(options.weightsDtype) : fileWeights ?? (hardware.kind === 'cpu' ? 'q8_0' : 'bf16');
  const kv = options.kvDtype ? parseKvDtype(options.kvDtype) : hardware.kind === 'cpu' ? 'f32' : weights === 'fp16' ? 'fp16' : 'bf16';
  return { weights, kv };
}

function buildInput(options: PlanCliOptions): { input: PlanInput; note?: string } {
  const model = resolveModel(options.model);
  const source = resolveHardware(options.hardware);
  const hardware = hardwareOf(source.hardware, options);
  const { weights, kv } = dtypesOf(options, hardware, model.weights);
  const input: PlanInput = {
    shape: model.shape,
    hardware,
    layout: { tp: options.tp, pp: options.pp, ep: options.ep, dp: options.dp },
    devices: options.devices,
    threads: options.threads,
    weights,
    kv,
    workload: { inputLength: options.inputLen, outputLength: options.outputLen, arrival: arrivalOf(options), burst: options.burst === true },
    frontend: options.frontend,
    kvCacheGiB: options.kvCacheGib,
  };
  return { input, note: source.note };
}

function run(options: PlanCliOptions): void {
  const { input, note } = buildInput(options);
  if (note && !options.json) process.stderr.write(`${note}\n`);
  if (options.search) {
    const objective: SearchObjective = options.search === true ? 'throughput' : options.search;
    const maxDevices = options.maxDevices ?? options.devices ?? input.hardware.devicesPerNode;
    const candidates = searchLayouts(input, { maxDevices, objective, maxTtftMs: options.maxTtftMs, maxTpotMs: options.maxTpotMs });
    if (options.json) process.stdout.write(`${JSON.stringify({ candidates }, null, 2)}\n`);
    else process.stdout.write(searchText(candidates));
    return;
  }
  if (options.pd) {
    const comparison = planDisaggregated(input, options.pd === true ? undefined : parsePdSplit(options.pd));
    process.stdout.write(options.json ? `${JSON.stringify(comparison, null, 2)}\n` : pdText(input, comparison));
    return;
  }
  if (options.whatIf) {
    const { base, rows } = whatIf(input, parseWhatIf(options.whatIf));
    if (options.json) process.stdout.write(`${JSON.stringify({ ...base, whatIf: rows.map(({ knob, factor, change, result }) => ({ knob, factor, change, ttftMs: result.ttftMs, tpotMs: result.tpotMs, outputTokensPerSecond: result.outputTokensPerSecond })) }, null, 2)}\n`);
    else process.stdout.write(planText(input, base) + '\n' + whatIfText(base, rows));
    return;
  }
  const result = planDeployment(input);
  if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(planText(input, result));
}

export function registerPlanCommand(program: Command): void {
  program
    .command('plan')
    .description('predict TTFT, TPOT, output tok/s and memory per device of a model on some hardware (analytical cost model)')
    .requiredOption('--model <name|path>', 'catalog name (tessera plan --model x lists them), a config.json, or a .gguf file')
    .option('--hardware <name|file>', 'catalog device, this-machine, or a JSON profile', 'this-machine')
    .option('--devices <n>', 'GPUs: tp × pp × dp (checked); CPU hosts: hosts the ranks spread over', whole('--devices'))
    .option('--devices-per-node <n>', 'devices that share the interconnect (default: the catalog entry\'s)', whole('--devices-per-node'))
    .option('--interconnect <link>', 'link between devices of a node (nvlink3, nvlink4, nvlink5, xgmi, pcie4, pcie5, ...)')
    .option('--network <link>', 'link between nodes (infiniband-ndr, ethernet-100g, ...)')
    .option('--tp <n>', 'tensor-parallel degree', whole('--tp'), 1)
    .option('--pp <n>', 'pipeline-parallel degree', whole('--pp'), 1)
    .option('--ep <n>', 'expert-parallel degree (1 or a divisor of --tp)', whole('--ep'), 1)
    .option('--dp <n>', 'replicas (data parallelism)', whole('--dp'), 1)
    .option('--threads <n>', 'CPU hosts: threads per rank (default: the cores over the ranks)', whole('--threads'))
    .addOption(new Option('--weights-dtype <type>', 'weight format (default: the file\'s, else bf16; q8_0 on CPUs)').choices([...WEIGHT_DTYPES]))
    .addOption(new Option('--kv-dtype <type>', 'KV-cache format (default: f32 on CPUs as Tessera, else bf16)').choices([...KV_DTYPES, 'f16']))
    .option('--input-len <n>', 'prompt tokens per request', whole('--input-len'), 512)
    .option('--output-len <n>', 'generated tokens per request', whole('--output-len'), 128)
    .option('--concurrency <n|max>', 'closed loop: clients each sending the next request when the last ends; max: offline, as many as fit (default 1)')
    .option('--qps <q>', 'Poisson arrivals, requests per second', positive('--qps'))
    .option('--burst', 'the --concurrency requests start together and decode as one batch (a static batch, bench serve --rounds 1)')
    .addOption(new Option('--frontend <kind>', 'requests through the HTTP server (http) or the engine driven directly (none)').choices(['http', 'none']).default('http'))
    .option('--kv-cache-gib <n>', 'cap each rank\'s KV cache (Tessera: --kv-cache-mib / 1024)', positive('--kv-cache-gib'))
    .option('--max-num-seqs <n>', 'most sequences a replica runs at once (default: the runtime\'s)', whole('--max-num-seqs'))
    .option('--max-batch-tokens <n>', 'prompt tokens per step, the chunk size (default: the runtime\'s)', whole('--max-batch-tokens'))
    .addOption(new Option('--search [objective]', 'find the layout that maximizes throughput, or minimizes devices, under the targets').choices(['throughput', 'devices']))
    .option('--max-ttft-ms <ms>', '--search: TTFT target', positive('--max-ttft-ms'))
    .option('--max-tpot-ms <ms>', '--search: TPOT target', positive('--max-tpot-ms'))
    .option('--max-devices <n>', '--search: most devices to use (default: --devices, else one node)', whole('--max-devices'))
    .option('--what-if <knobs>', 'sensitivity: memory-bandwidth=1.5x,compute=2x,link-bandwidth=2x,link-latency=0.5x,memory-capacity=2x,overhead=0.5x')
    .option('--pd [P:D]', 'disaggregated prefill and decode: P prefill + D decode replicas of this layout against P + D colocated ones (no value: every split of --dp replicas, two when --dp is 1); says whether it pays')
    .option('--json', 'print one JSON object')
    .action((options: PlanCliOptions) => run(options));
}
