/** `tessera logits`: the float32 logits at every prompt position, for conformance checks. */
import type { Command } from 'commander';
import { TesseraError } from '../../core/errors.js';
import { addComputeOptions, addModelOptions, parseIdList, type ModelOptions } from '../model-options.js';
import { addParallelOptions, openEngineFor, type ParallelOptions } from '../parallel-options.js';

interface LogitsOptions extends ModelOptions, ParallelOptions {
  promptIds: string;
  json?: boolean;
}

export function registerLogitsCommand(program: Command): void {
  addParallelOptions(addComputeOptions(addModelOptions(program.command('logits').description('print the logits of every prompt position'))))
    .requiredOption('--prompt-ids <ids>', 'comma-separated token ids')
    .option('--json', 'print {"logits": [[...], ...]} (the only output form)')
    .action(async (options: LogitsOptions) => {
      const promptIds = parseIdList(options.promptIds);
      if (promptIds.length === 0) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', '--prompt-ids is empty; give at least one id');
      const { engine, close } = await openEngineFor(options);
      /** [numTokens, vocabSize] */
      const logits = await engine.logits(promptIds);
      await close();
      const vocabSize = engine.config.vocabSize;
      const rows: string[] = [];
      for (let t = 0; t < promptIds.length; t++) {
        rows.push(`[${Array.from(logits.subarray(t * vocabSize, (t + 1) * vocabSize)).join(',')}]`);
      }
      process.stdout.write(`{"logits":[${rows.join(',')}]}\n`);
    });
}
