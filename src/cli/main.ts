/** The `tessera` command line. */
import { Command } from 'commander';
import { reportError } from './cli-error.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerInspectCommand } from './commands/inspect.js';
import { registerLogitsCommand } from './commands/logits.js';
import { registerPlanCommand } from './commands/plan.js';
import { registerProfileCommand } from './commands/profile.js';
import { registerRouterCommand } from './commands/router.js';
import { registerRunCommand } from './commands/run.js';
import { registerServeCommand } from './commands/serve.js';
import { registerSynthCommand } from './commands/synth.js';
import { registerTokenizeCommand } from './commands/tokenize.js';
import { registerWorkerCommand } from './commands/worker.js';

const program = new Command();
program.name('tessera').description('Distributed inference for large language models').version('0.1.0');
program.exitOverride();
program.configureOutput({ writeErr: (text) => process.stderr.write(text) });
registerRunCommand(program);
registerLogitsCommand(program);
registerTokenizeCommand(program);
registerWorkerCommand(program);
registerInspectCommand(program);
registerSynthCommand(program);
registerServeCommand(program);
registerRouterCommand(program);
registerBenchCommand(program);
registerPlanCommand(program);
registerProfileCommand(program);

const verbose = process.argv.includes('--verbose');
try {
  await program.parseAsync(process.argv);
} catch (error) {
  const code = (error as { code?: string }).code;
  if (code === 'commander.helpDisplayed' || code === 'commander.version') process.exit(0);
  // commander has already printed its own usage errors.
  if (typeof code === 'string' && code.startsWith('commander.')) process.exit(2);
  process.exit(reportError(error, verbose));
}
