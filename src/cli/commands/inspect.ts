/** `tessera inspect`: what a model file holds, without loading its weights; `--devices`: the GPUs WebGPU finds. */
import type { Command } from 'commander';
import { byteSize } from '../../core/dtype.js';
import { TesseraError } from '../../core/errors.js';
import { NO_ADAPTER_HINT, listAdapters } from '../../backend/webgpu/gpu-adapter.js';
import type { AdapterDescription } from '../../backend/webgpu/gpu-protocol.js';
import { openModelFiles } from '../../engine/model-files.js';
import { matrixShape } from '../../format/tensor-store.js';
import type { ModelOptions } from '../model-options.js';

interface InspectOptions extends Partial<ModelOptions> {
  json?: boolean;
  devices?: boolean;
}

export function registerInspectCommand(program: Command): void {
  program
    .command('inspect')
    .description('show architecture, config and tensors of a model, or (--devices) the GPU adapters WebGPU finds')
    .option('--model <path>', 'GGUF file, Hugging Face model directory, or llama2.c .bin checkpoint')
    .option('--tokenizer <path>', 'tokenizer file for llama2.c checkpoints (default: tokenizer.bin or tok*.bin beside the model)')
    .option('--devices', 'list the WebGPU adapters (GPUs) found, with their features and limits')
    .option('--json', 'print one JSON object')
    .option('--verbose', 'print stack traces on errors')
    .action(async (options: InspectOptions) => {
      if (options.devices) {
        await inspectDevices(options.json === true);
        return;
      }
      if (!options.model) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'inspect needs --model PATH (or --devices)');
      const files = openModelFiles(options.model, { tokenizerPath: options.tokenizer });
      files.store.close();
      const tensors = files.store.list().map((info) => {
        const { rows, cols } = matrixShape(info.shape);
        return { name: info.name, shape: [...info.shape], dtype: info.dtype, parameters: rows * cols, bytes: byteSize(info.dtype, rows * cols) };
      });
      const report = {
        path: files.path,
        format: files.format,
        architecture: files.config.architecture,
        config: files.config,
        parameters: tensors.reduce((sum, t) => sum + t.parameters, 0),
        bytes: tensors.reduce((sum, t) => sum + t.bytes, 0),
        tokenizer: { vocabSize: files.tokenizer.vocabSize, bosId: files.tokenizer.bosId, eosIds: files.tokenizer.eosIds, chatTemplate: files.tokenizer.chatTemplate !== undefined },
        metadata: files.metadata,
        tensors,
      };
      if (options.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      printReport(report);
    });
}

function printReport(report: {
  path: string;
  format: string;
  architecture: string;
  config: object;
  parameters: number;
  bytes: number;
  tensors: { name: string; shape: number[]; dtype: string; bytes: number }[];
}): void {
  const lines = [
    `${report.path}`,
    `format ${report.format}, architecture ${report.architecture}`,
    `${(report.parameters / 1e6).toFixed(2)} M parameters, ${(report.bytes / 2 ** 20).toFixed(1)} MiB of weights`,
    '',
    ...Object.entries(report.config).map(([key, value]) => `  ${key.padEnd(18)} ${JSON.stringify(value)}`),
    '',
    ...report.tensors.map((t) => `  ${t.name.padEnd(28)} ${t.dtype.padEnd(5)} [${t.shape.join(', ')}]`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The adapters Dawn finds; none is TESSERA_ERR_NO_GPU_ADAPTER with how to get one. */
async function inspectDevices(json: boolean): Promise<void> {
  const adapters = await listAdapters();
  if (adapters.length === 0) throw new TesseraError('TESSERA_ERR_NO_GPU_ADAPTER', `no WebGPU adapter was found; ${NO_ADAPTER_HINT}`);
  if (json) {
    process.stdout.write(`${JSON.stringify({ adapters }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${adapters.map(describe).join('\n\n')}\n`);
}

function describe(adapter: AdapterDescription, index: number): string {
  const { limits } = adapter;
  const name = [adapter.vendor, adapter.architecture, adapter.device, adapter.description].filter(Boolean).join(' / ');
  return [
    `adapter ${index}: ${name}${adapter.isFallbackAdapter ? ' (software fallback)' : ''}`,
    `  features: ${adapter.features.join(', ')}`,
    `  maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}, maxBufferSize ${limits.maxBufferSize}, ` +
      `maxComputeWorkgroupStorageSize ${limits.maxComputeWorkgroupStorageSize}, maxComputeInvocationsPerWorkgroup ${limits.maxComputeInvocationsPerWorkgroup}`,
    `  limits: ${Object.entries(limits).map(([key, value]) => `${key} ${value}`).join(', ')}`,
  ].join('\n');
}
