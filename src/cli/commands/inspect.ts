/** `tessera inspect`: what a model file holds, without loading its weights. */
import type { Command } from 'commander';
import { byteSize } from '../../core/dtype.js';
import { openModelFiles } from '../../engine/model-files.js';
import { matrixShape } from '../../format/tensor-store.js';
import { addModelOptions, type ModelOptions } from '../model-options.js';

interface InspectOptions extends ModelOptions {
  json?: boolean;
}

export function registerInspectCommand(program: Command): void {
  addModelOptions(program.command('inspect').description('show architecture, config and tensors of a model'))
    .option('--json', 'print one JSON object')
    .action((options: InspectOptions) => {
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
