/** `tessera router`: an OpenAI-compatible front end over replicas (any `tessera serve`), with prefix-aware routing and failover. */
import { Option, type Command } from 'commander';
import { TesseraError } from '../../core/errors.js';
import { launchRouter } from '../../router/launch-router.js';
import { ROUTING_POLICIES, type RoutingPolicy } from '../../router/routing-policy.js';
import { DEFAULT_MAX_BODY_BYTES } from '../../serve/server.js';
import { numberOption } from '../model-options.js';
import { stopOnSignals } from '../stop-on-signals.js';
import { addSecurityOptions, securityOf, type SecurityFlags } from '../security-options.js';

export interface RouterFlags extends SecurityFlags {
  model: string;
  tokenizer?: string;
  replica: string[];
  host: string;
  port: number;
  replicaApiKey?: string;
  policy: RoutingPolicy;
  maxMigrations: number;
  healthInterval: number;
  healthTimeout: number;
  breakerCooldown: number;
  replicaWait: number;
  pd?: boolean;
  pdLocalPrefill: number;
  startupTimeout: number;
  servedModelName?: string;
  maxBodyBytes: number;
  drainTimeout: number;
}

/** A --replica value: an http(s) URL (a bare host:port gets http://). */
export function replicaUrl(value: string, previous: string[] = []): string[] {
  const text = /^[a-z]+:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--replica "${value}" is not a URL; give http://HOST:PORT of a tessera serve`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--replica "${value}" must be an http:// or https:// URL`);
  return [...previous, url.origin];
}

/** The router's own flags, shared with `serve --replicas` (which adds the replica processes). */
export function addRoutingOptions(command: Command): Command {
  return command
    .addOption(new Option('--policy <name>', 'how a replica is chosen: prefix (longest cached prefix, balanced by load), least-load, round-robin').choices([...ROUTING_POLICIES]).default('prefix'))
    .option('--max-migrations <n>', 'times one request may move to another replica after its output started; past it the client gets a 503', numberOption('--max-migrations', 0, 100, true), 3)
    .option('--health-interval <ms>', 'how often each replica\'s load is polled', numberOption('--health-interval', 10, 60_000, true), 250)
    .option('--health-timeout <ms>', 'a replica silent this long is out, and its requests move', numberOption('--health-timeout', 50, 600_000, true), 2000)
    .option('--breaker-cooldown <ms>', 'an out replica that answers again waits this long before a trial request', numberOption('--breaker-cooldown', 0, 600_000, true), 1000)
    .option('--replica-wait <ms>', 'how long a request waits for a replica that can take it before a 503', numberOption('--replica-wait', 0, 600_000, true), 10_000)
    .option('--pd', "disaggregated prefill and decode: each prompt to a prefill replica (prefix, load), its KV streamed to a decode replica (load, KV room) that continues it; by the replicas' --role")
    .option('--pd-local-prefill <tokens>', 'with --pd: a sequence with at most this many tokens to prefill runs whole on the decode replica it would go to (no prefill queue, no KV transfer); 0 = every sequence disaggregated', numberOption('--pd-local-prefill', 0, 2 ** 31, true), 0);
}

export function registerRouterCommand(program: Command): void {
  const command = program
    .command('router')
    .description('serve the OpenAI API in front of replicas (tessera serve processes, here or elsewhere): prefix-aware routing, health checks, failover with byte-identical continuation')
    .requiredOption('--model <path>', "the replicas' model (only its config and tokenizer are read), or synth:PRESET")
    .option('--tokenizer <path>', 'tokenizer file for llama2.c checkpoints')
    .requiredOption('--replica <url>', 'a replica, http://HOST:PORT (repeat for each)', replicaUrl)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 = any free port)', numberOption('--port', 0, 65535, true), 8000)
    .option('--replica-api-key <key>', "the key the replicas require (inference scope), sent instead of the client's (shows in the process list: prefer $TESSERA_REPLICA_API_KEY)")
    .option('--served-model-name <name>', "model name clients use (default: the replicas' name)")
    .option('--startup-timeout <seconds>', 'how long to wait for the first replica to answer', numberOption('--startup-timeout', 1, 86400), 60)
    .option('--max-body-bytes <n>', 'larger request bodies get 413', numberOption('--max-body-bytes', 1024, 2 ** 31, true), DEFAULT_MAX_BODY_BYTES)
    .option('--drain-timeout <seconds>', 'on SIGTERM: seconds to let requests in flight finish', numberOption('--drain-timeout', 0, 86400), 30)
    .option('--verbose', 'print stack traces on errors');
  addSecurityOptions(command, 'require Authorization: Bearer KEY from clients (scopes inference and metrics; default: $TESSERA_API_KEY, else no key)');
  addRoutingOptions(command).action(async (flags: RouterFlags) => {
    const log = (line: string): void => void process.stderr.write(`${line}\n`);
    const { keys, tls } = securityOf(flags, log);
    if (flags.replicaApiKey !== undefined) log('warning: --replica-api-key shows the key to anyone who can list processes (ps); use $TESSERA_REPLICA_API_KEY');
    const { server } = await launchRouter({
      model: flags.model,
      tokenizerPath: flags.tokenizer,
      replicas: flags.replica,
      host: flags.host,
      port: flags.port,
      keys,
      tls,
      replicaApiKey: flags.replicaApiKey ?? process.env.TESSERA_REPLICA_API_KEY,
      servedModelName: flags.servedModelName,
      maxBodyBytes: flags.maxBodyBytes,
      ...routingOf(flags),
      startupTimeoutMs: flags.startupTimeout * 1000,
      log,
    });
    stopOnSignals(server, flags.drainTimeout * 1000, log);
  });
}

/** The routing flags as launchRouter options. */
export function routingOf(flags: Pick<RouterFlags, 'policy' | 'maxMigrations' | 'healthInterval' | 'healthTimeout' | 'breakerCooldown' | 'replicaWait' | 'pd'> & { pdLocalPrefill?: number }): {
  policy: RoutingPolicy;
  pd: boolean;
  pdLocalPrefillTokens: number;
  maxMigrations: number;
  pollMs: number;
  healthTimeoutMs: number;
  cooldownMs: number;
  waitForReplicaMs: number;
} {
  if (!flags.pd && (flags.pdLocalPrefill ?? 0) > 0) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', '--pd-local-prefill only applies with --pd');
  return { policy: flags.policy, pd: flags.pd === true, pdLocalPrefillTokens: flags.pdLocalPrefill ?? 0, maxMigrations: flags.maxMigrations, pollMs: flags.healthInterval, healthTimeoutMs: flags.healthTimeout, cooldownMs: flags.breakerCooldown, waitForReplicaMs: flags.replicaWait };
}
