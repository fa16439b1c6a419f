/** `tessera run`: generate from a prompt, streaming text or printing one JSON object. */
import type { Command } from 'commander';
import { TesseraError } from '../../core/errors.js';
import type { Engine } from '../../engine/engine.js';
import type { GenerationResult } from '../../engine/generation.js';
import { renderChatTemplate, FALLBACK_CHAT_TEMPLATE } from '../../tokenizer/chat-template.js';
import { addComputeOptions, addModelOptions, numberOption, parseIdList, type ModelOptions } from '../model-options.js';
import { addParallelOptions, openEngineFor, type ParallelOptions } from '../parallel-options.js';

interface RunOptions extends ModelOptions, ParallelOptions {
  prompt?: string;
  promptIds?: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  seed: number;
  stop: string[];
  chat?: boolean;
  json?: boolean;
  ignoreEos?: boolean;
}

export function registerRunCommand(program: Command): void {
  addParallelOptions(addComputeOptions(addModelOptions(program.command('run').description('generate text from a prompt'))))
    .option('--prompt <text>', 'prompt text (default: start from BOS)')
    .option('--prompt-ids <ids>', 'prompt as comma-separated token ids')
    .option('--max-tokens <n>', 'tokens to generate', numberOption('--max-tokens', 1, 1e9, true), 128)
    .option('--temperature <t>', '0 = greedy', numberOption('--temperature', 0, 100), 0)
    .option('--top-k <k>', '0 = off', numberOption('--top-k', 0, 1e9, true), 0)
    .option('--top-p <p>', '1 = off', numberOption('--top-p', 0, 1), 1)
    .option('--min-p <p>', '0 = off', numberOption('--min-p', 0, 1), 0)
    .option('--repetition-penalty <p>', '1 = off', numberOption('--repetition-penalty', 0.01, 100), 1)
    .option('--presence-penalty <p>', 'OpenAI presence penalty', numberOption('--presence-penalty', -2, 2), 0)
    .option('--frequency-penalty <p>', 'OpenAI frequency penalty', numberOption('--frequency-penalty', -2, 2), 0)
    .option('--seed <s>', 'sampling seed', numberOption('--seed', 0, 2 ** 53, true), 0)
    .option('--stop <text>', 'stop string (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option('--chat', "wrap the prompt in the model's chat template as a user message")
    .option('--json', 'print one JSON object instead of streaming text')
    .option('--ignore-eos', 'keep generating past the end-of-sequence token (for benchmarks)')
    .action(async (options: RunOptions) => {
      const { engine, close, mesh } = await openEngineFor(options);
      const promptIds = promptIdsFor(engine, options);
      const result = await generate(engine, promptIds, options);
      await close();
      if (options.json) {
        const { promptIds: ids, ...rest } = result;
        // MoE models run in this process: tokens per expert per layer (empty rows for dense layers).
        const load = engine.transformer.expertLoad.snapshot();
        const expertLoad = engine.config.moe && load.steps.some((steps) => steps > 0) ? { expertLoad: load } : {};
        // On a mesh: each rank's time per decode step (compute, waiting, transfer, event loop).
        const meshTimes = mesh ? { mesh: mesh() } : {};
        process.stdout.write(`${JSON.stringify({ promptIds: ids, ...rest, timings: { loadMs: engine.loadMs, ...result.timings }, ...expertLoad, ...meshTimes })}\n`);
      } else {
        process.stdout.write('\n');
        const t = result.timings;
        process.stderr.write(
          `[${t.promptTokens} prompt tokens, ${t.generatedTokens} generated, ${t.prefillTokensPerSecond.toFixed(1)} tok/s prefill, ${t.decodeTokensPerSecond.toFixed(1)} tok/s decode, finish: ${result.finishReason}]\n`,
        );
      }
    });
}

function promptIdsFor(engine: Engine, options: RunOptions): number[] {
  if (options.prompt !== undefined && options.promptIds !== undefined) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'give either --prompt or --prompt-ids, not both');
  }
  if (options.promptIds !== undefined) return parseIdList(options.promptIds);
  const tokenizer = engine.tokenizer;
  if (options.chat) {
    const template = tokenizer.chatTemplate ?? FALLBACK_CHAT_TEMPLATE;
    const bosToken = tokenizer.bosId === undefined ? undefined : tokenizer.tokenText(tokenizer.bosId);
    const eosId = tokenizer.eosIds[0];
    const eosToken = eosId === undefined ? undefined : tokenizer.tokenText(eosId);
    const text = renderChatTemplate(template, [{ role: 'user', content: options.prompt ?? '' }], { bosToken, eosToken, addGenerationPrompt: true });
    const templateHasBos = bosToken !== undefined && text.startsWith(bosToken);
    return tokenizer.encode(text, { addBos: tokenizer.addBosByDefault && !templateHasBos, parseSpecial: true });
  }
  if (options.prompt === undefined || options.prompt === '') {
    if (tokenizer.bosId === undefined) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'this model has no BOS token; give --prompt');
    return [tokenizer.bosId];
  }
  return tokenizer.encode(options.prompt, { addBos: tokenizer.addBosByDefault });
}

async function generate(engine: Engine, promptIds: number[], options: RunOptions): Promise<GenerationResult> {
  const steps = engine.generate({
    promptIds,
    maxTokens: options.maxTokens,
    stop: options.stop,
    ignoreEos: options.ignoreEos,
    sampling: {
      temperature: options.temperature,
      topK: options.topK,
      topP: options.topP,
      minP: options.minP,
      repetitionPenalty: options.repetitionPenalty,
      presencePenalty: options.presencePenalty,
      frequencyPenalty: options.frequencyPenalty,
      seed: options.seed,
    },
  });
  for (;;) {
    const step = await steps.next();
    if (step.done) return step.value;
    if (!options.json) process.stdout.write(step.value.text);
  }
}
