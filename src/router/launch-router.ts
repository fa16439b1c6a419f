/**
 * Starting a router end to end: listen (so /health answers at once), read
 * the model's config and tokenizer (never its weights), connect to the
 * replicas and wait for the first, then serve the OpenAI routes through the
 * same protocol layer as `tessera serve`, with the routed host behind it —
 * so a router's responses are a replica's, byte for byte (ids aside).
 */
import { TesseraError } from '../core/errors.js';
import { openModelFiles } from '../engine/model-files.js';
import { resolveModelSource } from '../serve/model-source.js';
import { DEFAULT_HEALTH_TIMEOUT_MS, DEFAULT_POLL_MS } from '../serve/remote-engine-host.js';
import { DEFAULT_MAX_BODY_BYTES, TesseraServer } from '../serve/server.js';
import { ReplicaSet } from './replica-set.js';
import { RoutedEngineHost } from './routed-engine-host.js';
import { routerTopology } from '../serve/dashboard-topology.js';
import type { ApiKey } from '../serve/api-keys.js';
import type { TlsFiles } from '../serve/tls-files.js';
import type { ReplicaId } from './replica-state.js';
import { RouterMetrics } from './router-metrics.js';
import { PdMetrics } from './pd-metrics.js';
import type { RoutingPolicy } from './routing-policy.js';

export interface RouterLaunchOptions {
  host?: string;
  port?: number;
  /** What clients must send (Authorization: Bearer KEY): one key with the default scopes, and/or `keys`. */
  apiKey?: string;
  keys?: readonly ApiKey[];
  /** HTTPS for clients. */
  tls?: TlsFiles;
  maxBodyBytes?: number;
  /** The served model's files, for its config and tokenizer (weights are never read). */
  model: string;
  tokenizerPath?: string;
  servedModelName?: string;
  replicas: readonly string[];
  /** What the replicas require; never the client's key. */
  replicaApiKey?: string;
  policy?: RoutingPolicy;
  /** Disaggregated prefill and decode: prompts to prefill replicas, their KV to decode replicas (by the replicas' --role). */
  pd?: boolean;
  /** Under pd: sequences with at most this many tokens to prefill run whole on a decode replica (0: none). */
  pdLocalPrefillTokens?: number;
  maxMigrations?: number;
  pollMs?: number;
  healthTimeoutMs?: number;
  cooldownMs?: number;
  /** How long a request waits for a routable replica before a 503. */
  waitForReplicaMs?: number;
  /** How long start-up waits for the first replica. */
  startupTimeoutMs?: number;
  /** Sequences queued or running, over all replicas, beyond which requests get 429 (default: the first replica's limit × replicas). */
  maxActiveSequences?: number;
  log?: (line: string) => void;
}

export interface Router {
  server: TesseraServer;
  metrics: RouterMetrics;
  replicas: ReplicaSet;
}

export async function launchRouter(options: RouterLaunchOptions): Promise<Router> {
  const log = options.log ?? (() => undefined);
  const server = await TesseraServer.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8000, apiKey: options.apiKey, keys: options.keys, tls: options.tls, maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES });
  const metrics = new RouterMetrics(server.metrics.registry);
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const replicas = new ReplicaSet(options.replicas, { apiKey: options.replicaApiKey, pollMs, timeoutMs: options.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS, cooldownMs: options.cooldownMs ?? 1000, log, metrics });
  server.onClose(() => void replicas.close());
  try {
    const source = await resolveModelSource(options.model, log);
    server.onClose(() => source.cleanup());
    const files = openModelFiles(source.path, { tokenizerPath: options.tokenizerPath });
    files.store.close();
    const reference = await replicas.waitForFirst(options.startupTimeoutMs ?? 60_000);
    if (reference.vocabSize !== files.config.vocabSize) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `the replicas serve a model with ${reference.vocabSize} tokens but --model ${options.model} has ${files.config.vocabSize}; give the router the replicas' model`);
    }
    const policy = options.policy ?? 'prefix';
    const pd = options.pd ? new PdMetrics(server.metrics.registry) : undefined;
    const host = new RoutedEngineHost(replicas, reference.limits, { policy, maxMigrations: options.maxMigrations ?? 3, waitForReplicaMs: options.waitForReplicaMs ?? 10_000, pd, pdLocalPrefillTokens: options.pdLocalPrefillTokens, log }, metrics);
    const name = options.servedModelName ?? reference.model;
    server.dashboard.setTopology(routerTopology(() => replicas.statuses().map((entry, id) => ({ ...entry, load: replicas.state(id as ReplicaId).reportedLoad, kvUse: replicas.state(id as ReplicaId).kvUse }))));
    server.setModel({
      host,
      tokenizer: files.tokenizer,
      config: files.config,
      name,
      metrics: server.metrics,
      created: Math.floor(Date.now() / 1000),
      maxActiveSequences: options.maxActiveSequences ?? reference.maxActiveSequences * replicas.size,
      admission: server.admission,
    });
    const mode = pd ? 'disaggregated prefill and decode by the replicas\' roles, prefill policy prefix' : `policy ${policy}`;
    log(`serving "${name}" on ${server.url} (router over ${replicas.size} replicas, ${mode}, block size ${reference.limits.blockSize}, max model len ${reference.limits.maxModelLen})`);
    return { server, metrics, replicas };
  } catch (error) {
    await server.close();
    throw error;
  }
}
