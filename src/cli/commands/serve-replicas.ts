/**
 * `tessera serve --replicas N`: N replica processes (each a `tessera serve`
 * with this command's flags and 1/N of the cores) behind a router in this
 * process, on --host/--port — the one-command way to data parallelism on
 * one machine. A synthetic model is written once and shared.
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
import type { ServeOptions } from './serve.js';

export type ServeReplicasOptions = ServeOptions & Pick<RouterFlags, 'policy' | 'maxMigrations' | 'healthInterval' | 'healthTimeout' | 'breakerCooldown' | 'replicaWait'> & { replicas: number };

export async function serveReplicas(options: ServeReplicasOptions, log: (line: string) => void): Promise<void> {
  if (options.tp > 1 || options.pp > 1 || options.listen !== undefined) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', '--replicas runs one-process replicas; for replicas that are meshes, start each with `tessera serve --tp/--pp` and put `tessera router` in front');
  }
  if (options.trace !== undefined) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', '--trace is per process; trace one replica with `tessera serve --trace` instead of --replicas');
  const source = await resolveModelSource(options.model, log);
  const name = options.servedModelName ?? source.defaultName;
  const cores = options.threads ?? NativeBackend.describeCpu()?.physicalCores ?? availableParallelism();
  const threads = Math.max(1, Math.floor(cores / options.replicas));
  // Only this process knows the replicas' key: clients reach them through the router alone.
  const replicaKey = randomBytes(16).toString('hex');
  const { replicas, urls } = await LocalReplicas.start(options.replicas, [...replicaArgs(options, source.path, name, threads), '--api-key', replicaKey], log).catch((error: unknown) => {
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
    apiKey: options.apiKey ?? process.env.TESSERA_API_KEY,
    maxBodyBytes: options.maxBodyBytes,
    ...routingOf(options),
    log,
  }).catch(async (error: unknown) => {
    await replicas.stop();
    source.cleanup();
    throw error;
  });
  log(`${options.replicas} replicas with ${threads} compute thread${threads === 1 ? '' : 's'} each`);
  const close = async (): Promise<void> => {
    await router.server.close();
    await replicas.stop();
    source.cleanup();
  };
  stopOnSignals({ drain: (graceMs) => router.server.drain(graceMs), close }, options.drainTimeout * 1000, log);
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
