/**
 * `tessera serve --replicas N`: N replica processes (each a `tessera serve`
 * with this command's flags and 1/N of the cores) behind a router in this
 * process, on --host/--port — the one-command way to data parallelism on
 * one machine. `--replicas P:D --pd` runs P prefill and D decode replicas
 * (`--role prefill|decode`) behind a `--pd` router instead. A synthetic
 * model is written once and shared.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { NativeBackend } from '../../backend/native/native-backend.js';
import { TesseraError } from '../../core/errors.js';
import { launchRouter } from '../../router/launch-router.js';
import { LocalReplicas } from '../../router/local-replicas.js';
import { resolveModelSource } from '../../serve/model-source.js';
import { routingOf, type RouterFlags } from './router.js';
import { stopOnSignals } from '../stop-on-signals.js';
import { securityOf } from '../security-options.js';
import type { ServeOptions } from './serve.js';
import { numberOption } from '../model-options.js';
import { pdArgs } from '../pd-options.js';

/** N replicas alike, or prefill and decode pools (P:D). */
export type ReplicaCount = number | { prefill: number; decode: number };

export type ServeReplicasOptions = ServeOptions & Pick<RouterFlags, 'policy' | 'maxMigrations' | 'healthInterval' | 'healthTimeout' | 'breakerCooldown' | 'replicaWait' | 'pd' | 'pdLocalPrefill'> & { replicas: ReplicaCount };

/** `--replicas N` or `--replicas P:D`. */
export function replicasOption(value: string): ReplicaCount {
  const pools = /^(\d+):(\d+)$/.exec(value);
  if (!pools) return numberOption('--replicas', 1, 256, true)(value);
  const [prefill, decode] = [Number(pools[1]), Number(pools[2])];
  if (prefill < 1 || decode < 1 || prefill + decode > 256) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--replicas ${value}: P:D needs at least one prefill and one decode replica, 256 in all`);
  return { prefill, decode };
}

export async function serveReplicas(options: ServeReplicasOptions, log: (line: string) => void): Promise<void> {
  if (options.tp > 1 || options.pp > 1 || options.listen !== undefined) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', '--replicas runs one-process replicas; for replicas that are meshes, start each with `tessera serve --tp/--pp` and put `tessera router` in front');
  }
  if (options.trace !== undefined) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', '--trace is per process; trace one replica with `tessera serve --trace` instead of --replicas');
  const pools = typeof options.replicas === 'number' ? undefined : options.replicas;
  if (pools && options.pd !== true) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--replicas ${pools.prefill}:${pools.decode} starts prefill and decode replicas: add --pd (the router that moves KV between them)`);
  const count = pools ? pools.prefill + pools.decode : (options.replicas as number);
  const source = await resolveModelSource(options.model, log);
  const name = options.servedModelName ?? source.defaultName;
  const cores = options.threads ?? NativeBackend.describeCpu()?.physicalCores ?? availableParallelism();
  const threads = Math.max(1, Math.floor(cores / count));
  // Only this process knows the replicas' key: clients reach them through the router alone.
  const replicaKey = randomBytes(16).toString('hex');
  const { keys, tls } = securityOf(options, log);
  // The key reaches the children in their environment: their command lines are readable by every user.
  const env = { TESSERA_API_KEY: replicaKey };
  const args = replicaArgs(options, source.path, name, threads);
  const { replicas, urls } = await startReplicas(pools ?? count, args, options, log, env).catch((error: unknown) => {
    source.cleanup();
    throw error;
  });
  const router = await launchRouter({
    model: source.path,
    tokenizerPath: options.tokenizer,
    servedModelName: name,
    replicas: urls,
    replicaApiKey: replicaKey,
    host: options.host,
    port: options.port,
    keys,
    tls,
    maxBodyBytes: options.maxBodyBytes,
    ...routingOf(options),
    log,
  }).catch(async (error: unknown) => {
    await replicas.stop();
    source.cleanup();
    throw error;
  });
  log(`${pools ? `${pools.prefill} prefill + ${pools.decode} decode` : count} replicas with ${threads} compute thread${threads === 1 ? '' : 's'} each`);
  const close = async (): Promise<void> => {
    await router.server.close();
    await replicas.stop();
    source.cleanup();
  };
  stopOnSignals({ drain: (graceMs) => router.server.drain(graceMs), close }, options.drainTimeout * 1000, log);
}

/** The replica processes: N alike, or a prefill pool then a decode pool (their --role and KV flags added). */
async function startReplicas(
  replicas: ReplicaCount,
  args: string[],
  flags: ServeOptions,
  log: (line: string) => void,
  env: Record<string, string>,
): Promise<{ replicas: { stop(): Promise<void> }; urls: string[] }> {
  if (typeof replicas === 'number') return LocalReplicas.start(replicas, args, log, env);
  const prefill = await LocalReplicas.start(replicas.prefill, [...args, ...pdArgs(flags, 'prefill')], log, env);
  const decode = await LocalReplicas.start(replicas.decode, [...args, ...pdArgs(flags, 'decode')], log, env).catch(async (error: unknown) => {
    await prefill.replicas.stop();
    throw error;
  });
  const both = [prefill.replicas, decode.replicas];
  return { replicas: { stop: async () => void (await Promise.all(both.map((pool) => pool.stop()))) }, urls: [...prefill.urls, ...decode.urls] };
}

/** The serve flags each replica gets (its port comes from LocalReplicas). */
function replicaArgs(options: ServeOptions, model: string, name: string, threads: number): string[] {
  const args = ['--model', model, '--host', '127.0.0.1', '--served-model-name', name, '--backend', options.backend, '--threads', String(threads)];
  args.push('--max-num-seqs', String(options.maxNumSeqs), '--max-batch-tokens', String(options.maxBatchTokens), '--kv-cache-mib', String(options.kvCacheMib), '--kv-cache-dtype', options.kvCacheDtype);
  args.push('--max-body-bytes', String(options.maxBodyBytes), '--drain-timeout', String(options.drainTimeout));
  if (options.tokenizer !== undefined) args.push('--tokenizer', options.tokenizer);
  if (options.maxModelLen !== undefined) args.push('--max-model-len', String(options.maxModelLen));
  if (options.maxWaiting !== undefined) args.push('--max-waiting', String(options.maxWaiting));
  if (!options.prefixCaching) args.push('--no-prefix-caching');
  return args;
}
