/**
 * Starting a server end to end: listen, get the model (synthesizing it if
 * asked), start the engine worker, open the generation routes. The CLI, the
 * tests and the benchmark all start servers this way.
 */
import type { BackendChoice } from '../backend/native/select-backend.js';
import { LocalEngineHost, type LocalEngineHostOptions } from './local-engine-host.js';
import type { ModelConfig } from '../core/model-config.js';
import { describeEndpoint } from '../disagg/kv-endpoint.js';
import { KvMetrics } from './kv-metrics.js';
import { PdReplica, type PdReplicaOptions } from './pd-replica.js';
import type { PromptOrder } from './pd-protocol.js';
import { DEFAULT_CORE_OPTIONS, type EngineCoreOptions } from '../engine/engine-core.js';
import { openModelFiles } from '../engine/model-files.js';
import { resolveModelSource } from './model-source.js';
import { serveTopology } from './dashboard-topology.js';
import { DEFAULT_MAX_BODY_BYTES, TesseraServer, type ServerOptions } from './server.js';

export interface LaunchOptions extends Partial<ServerOptions> {
  model: string;
  tokenizerPath?: string;
  servedModelName?: string;
  core?: Partial<EngineCoreOptions>;
  /** Sequences waiting beyond the running ones before 429 (default 4 × maxNumSeqs). */
  maxWaiting?: number;
  backend?: BackendChoice;
  /** Compute threads of the native backend (default: physical cores). */
  threads?: number;
  /** --tp/--pp: the model runs on a mesh of worker processes. */
  mesh?: LocalEngineHostOptions['mesh'];
  /** Without a mesh: Chrome trace JSON of the engine's steps and ops, written at shutdown. */
  trace?: string;
  /**
   * Its part in disaggregated prefill and decode (default: role both, KV
   * listener on --host, any port); engineNice: the engine thread's nice value
   * (default 0, whatever the role: a prefill replica's engine thread copies its
   * rows into the KV ring itself, and a niced thread sharing a core with a busy
   * one waits tens of ms for its turn, mid-copy).
   */
  pd?: Partial<Omit<PdReplicaOptions, 'metrics'>> & { engineNice?: number; promptOrder?: PromptOrder };
  log?: (line: string) => void;
}

export async function launchServer(options: LaunchOptions): Promise<TesseraServer> {
  const log = options.log ?? (() => undefined);
  const server = await TesseraServer.listen({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 8000,
    apiKey: options.apiKey,
    keys: options.keys,
    adminKey: options.adminKey,
    tls: options.tls,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
  });
  try {
    const source = await resolveModelSource(options.model, log);
    server.onClose(() => source.cleanup());
    const files = openModelFiles(source.path, { tokenizerPath: options.tokenizerPath });
    files.store.close();
    const promptOrder = options.pd?.promptOrder ?? (options.pd?.role === 'prefill' ? 'shortest' : 'arrival');
    const core: EngineCoreOptions = { ...DEFAULT_CORE_OPTIONS, ...options.core, shortestPromptFirst: promptOrder === 'shortest' };
    const nice = options.pd?.engineNice ?? 0;
    const host = await LocalEngineHost.start(source.path, { tokenizerPath: options.tokenizerPath, core, backend: options.backend, threads: options.threads, mesh: options.mesh, trace: options.trace, nice });
    const name = options.servedModelName ?? source.defaultName;
    const mesh = options.mesh;
    server.dashboard.setTopology(serveTopology(() => host.health(), mesh && { tp: mesh.tp, pp: mesh.pp, ep: mesh.ep ?? 1 }));
    const pd = await startPdReplica(host, files.config, server, options);
    server.setModel({
      host,
      tokenizer: files.tokenizer,
      config: files.config,
      name,
      metrics: server.metrics,
      created: Math.floor(Date.now() / 1000),
      maxActiveSequences: core.maxNumSeqs + (options.maxWaiting ?? 4 * core.maxNumSeqs),
      admission: server.admission,
      pd,
    });
    const limits = host.limits;
    log(`serving "${name}" on ${server.url} (${limits.backend} backend, max model len ${limits.maxModelLen}, ${limits.numBlocks} ${limits.kvCacheDtype} KV blocks of ${limits.blockSize} tokens, loaded in ${limits.loadMs.toFixed(0)} ms)`);
    log(describeRole(pd));
    return server;
  } catch (error) {
    await server.close();
    throw error;
  }
}

async function startPdReplica(host: LocalEngineHost, config: ModelConfig, server: TesseraServer, options: LaunchOptions): Promise<PdReplica> {
  const pd = await PdReplica.start(host, config, {
    role: options.pd?.role ?? 'both',
    kvHost: options.pd?.kvHost ?? options.host ?? '127.0.0.1',
    kvPort: options.pd?.kvPort ?? 0,
    kvAdvertiseHost: options.pd?.kvAdvertiseHost,
    transport: options.pd?.transport ?? 'auto',
    transferTimeoutMs: options.pd?.transferTimeoutMs ?? 120_000,
    direct: options.pd?.direct ?? true,
    metrics: new KvMetrics(server.metrics.registry),
  });
  server.onClose(() => pd.close());
  return pd;
}

/** The start-up line about the replica's role and where it takes KV. */
function describeRole(pd: PdReplica): string {
  const { role, kvTransfer, endpoints } = pd.load;
  if (!kvTransfer) return `role ${role}: this engine cannot move KV (its KV is on a device); it serves whole sequences`;
  const listening = endpoints.length > 0 ? `, KV transfers in on ${endpoints.map(describeEndpoint).join(' and ')}` : '';
  return `role ${role}${listening}`;
}
