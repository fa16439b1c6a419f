/** `tessera tokenize`: text to token ids with the model's own tokenizer. */
import type { Command } from 'commander';
import { openModelFiles } from '../../engine/model-files.js';
import { addModelOptions, type ModelOptions } from '../model-options.js';

interface TokenizeOptions extends ModelOptions {
  text: string;
  bos?: boolean;
  special?: boolean;
  json?: boolean;
}

export function registerTokenizeCommand(program: Command): void {
  addModelOptions(program.command('tokenize').description("tokenize text with the model's tokenizer"))
    .requiredOption('--text <text>', 'text to tokenize')
    .option('--no-bos', 'do not add BOS even where the model adds it by default')
    .option('--special', 'parse special-token text such as <|im_start|> into their ids')
    .option('--json', 'print {"ids": [...]}')
    .action((options: TokenizeOptions) => {
      // Tokenizing needs no weights: open the files only.
      const files = openModelFiles(options.model, { tokenizerPath: options.tokenizer });
      files.store.close();
      const tokenizer = files.tokenizer;
      const ids = tokenizer.encode(options.text, { addBos: options.bos !== false && tokenizer.addBosByDefault, parseSpecial: options.special === true });
      if (options.json) process.stdout.write(`${JSON.stringify({ ids })}\n`);
      else process.stdout.write(`${ids.map((id) => `${id}\t${JSON.stringify(tokenizer.tokenText(id))}`).join('\n')}\n`);
    });
}
