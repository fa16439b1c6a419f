/** `tessera synth`: random-weight models of real shapes, as GGUF files or HF directories. */
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { TesseraError } from '../../core/errors.js';
import { getPreset, presetNames, SYNTH_ARCHS, SYNTH_DTYPES, type SynthArch, type SynthDType } from '../../synth/presets.js';
import { synthesize } from '../../synth/synthesize.js';

interface SynthCliOptions {
  preset: string;
  arch?: SynthArch;
  dtype: SynthDType;
  out: string;
  format: 'gguf' | 'hf';
  seed: string;
  layers?: string;
  repeatLayers?: boolean;
}

function wholeNumber(flag: string, text: string): number {
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `${flag} must be a whole number, got "${text}"`);
  }
  return value;
}

export function registerSynthCommand(program: Command): void {
  program
    .command('synth')
    .description('write a model of a real shape with random weights (deterministic from --seed)')
    .requiredOption('--preset <name>', `model shape: ${presetNames().join(', ')}`)
    .addOption(new Option('--arch <arch>', 'architecture features (default: the preset\'s)').choices([...SYNTH_ARCHS]))
    .addOption(new Option('--dtype <dtype>', 'type of the weight matrices').choices([...SYNTH_DTYPES]).default('f32'))
    .requiredOption('--out <path>', 'output .gguf file, or directory with --format hf')
    .addOption(new Option('--format <format>', 'file format').choices(['gguf', 'hf']).default('gguf'))
    .option('--seed <n>', 'random seed', '0')
    .option('--layers <n>', 'number of layers (default: the preset\'s)')
    .option('--repeat-layers', 'give every layer the weights of layer 0 (fast, for benchmarks of large shapes; GGUF only)')
    .action(async (options: SynthCliOptions) => {
      const arch = options.arch ?? getPreset(options.preset).defaultArch;
      const bar = process.stderr.isTTY
        ? new cliProgress.SingleBar(
            { stream: process.stderr, format: 'synth [{bar}] {percentage}% | {eta_formatted} left', hideCursor: true },
            cliProgress.Presets.shades_classic,
          )
        : undefined;
      const megaElements = (n: number): number => Math.round(n / 1e6);
      try {
        await synthesize({
          preset: options.preset,
          arch,
          dtype: options.dtype,
          out: options.out,
          format: options.format,
          seed: wholeNumber('--seed', options.seed),
          layers: options.layers === undefined ? undefined : wholeNumber('--layers', options.layers),
          repeatLayers: options.repeatLayers === true,
          onProgress: (done, total) => {
            if (!bar) return;
            if (done === 0) bar.start(Math.max(1, megaElements(total)), 0);
            else bar.update(megaElements(done));
          },
        });
      } finally {
        bar?.stop();
      }
      process.stderr.write(`wrote ${options.out} (${options.preset}, ${arch}, ${options.dtype}, seed ${options.seed})\n`);
    });
}
