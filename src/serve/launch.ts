/**
 * Starting a server end to end: listen, get the model (synthesizing it if
 * asked), start the engine worker, open the generation routes. The CLI, the
 * tests and the benchmark all start servers this way.
 */
import type { BackendChoice } from '../backend/native/select-backend.js';
import { LocalEngineHost, type LocalEngineHostOptions } from './local-engine-host.js';
import { DEFAULT_CORE_OPTIONS, type EngineCoreOptions } from '../engine/engine-core.js';
import { openModelFiles } from '../engine/model-files.js';
import { resolveModelSource } from './model-source.js';
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
  log?: (line: string) => void;
}

export async function launchServer(options: LaunchOptions): Promise<TesseraServer> {
  const log = options.log ?? (() => undefined);
  const server = await TesseraServer.listen({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 8000,
    apiKey: options.apiKey,
    adminKey: options.adminKey,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
  });
  try {
    const source = await resolveModelSource(options.model, log);
    server.onClose(() => source.cleanup());
    const files = openModelFiles(source.path, { tokenizerPath: options.tokenizerPath });
    files.store.close();
    const core: EngineCoreOptions = { ...DEFAULT_CORE_OPTIONS, ...options.core };
    const host = await LocalEngineHost.start(source.path, { tokenizerPath: options.tokenizerPath, core, backend: options.backend, threads: options.threads, mesh: options.mesh, trace: options.trace });
    const name = options.servedModelName ?? source.defaultName;
    server.setModel({
      host,
      tokenizer: files.tokenizer,
      config: files.config,
      name,
      metrics: server.metrics,
      created: Math.floor(Date.now() / 1000),
      maxActiveSequences: core.maxNumSeqs + (options.maxWaiting ?? 4 * core.maxNumSeqs),
      admission: server.admission,
    });
    const limits = host.limits;
    log(`serving "${name}" on ${server.url} (${limits.backend} backend, max model len ${limits.maxModelLen}, ${limits.numBlocks} ${limits.kvCacheDtype} KV blocks of ${limits.blockSize} tokens, loaded in ${limits.loadMs.toFixed(0)} ms)`);
    return server;
  } catch (error) {
    await server.close();
    throw error;
  }
}
