/** `tessera serve`: the OpenAI-compatible server, embedded mode (one process, model in a worker thread). */
import { Option, type Command } from 'commander';
import { BACKEND_CHOICES, type BackendChoice } from '../../backend/native/select-backend.js';
import { TesseraError } from '../../core/errors.js';
import { DEFAULT_CORE_OPTIONS } from '../../engine/engine-core.js';
import { launchServer } from '../../serve/launch.js';
import { DEFAULT_MAX_BODY_BYTES } from '../../serve/server.js';
import { kvCacheDtypeOption, numberOption, tileCacheOption } from '../model-options.js';
import type { KvDtype } from '../../core/kv-dtype.js';
import { addSecurityOptions, securityOf, type SecurityFlags } from '../security-options.js';
import { addParallelOptions, meshPlanOf, type ParallelOptions } from '../parallel-options.js';
import { exitWithParent } from '../../router/local-replicas.js';
import { addRoutingOptions } from './router.js';
import { addPdOptions, pdOf, type PdFlags } from '../pd-options.js';
import { replicasOption, serveReplicas, type ServeReplicasOptions } from './serve-replicas.js';
import { stopOnSignals } from '../stop-on-signals.js';

export interface ServeOptions extends ParallelOptions, SecurityFlags, PdFlags {
  model: string;
  tokenizer?: string;
  backend: BackendChoice;
  threads?: number;
  host: string;
  port: number;
  maxNumSeqs: number;
  maxModelLen?: number;
  maxBatchTokens: number;
  kvCacheMib: number;
  kvCacheDtype: KvDtype;
  maxWaiting?: number;
  maxBodyBytes: number;
  servedModelName?: string;
  prefixCaching: boolean;
  drainTimeout: number;
}

export function registerServeCommand(program: Command): void {
  const command = program
    .command('serve')
    .description('serve a model over an OpenAI-compatible HTTP API (continuous batching, paged KV cache, prefix caching)')
    .requiredOption('--model <path>', 'GGUF file, HF directory, llama2.c .bin, or synth:PRESET[:DTYPE] for random weights')
    .addOption(new Option('--backend <name>', 'compute backend (auto: native when built, else reference; webgpu: the GPU)').choices([...BACKEND_CHOICES]).default('auto'))
    .option('--threads <n>', 'compute threads of the native backend (default: physical cores)', numberOption('--threads', 1, 1024, true))
    .addOption(tileCacheOption())
    .option('--tokenizer <path>', 'tokenizer file for llama2.c checkpoints')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 = any free port)', numberOption('--port', 0, 65535, true), 8000)
    .option('--admin-key <key>', 'turn on /admin/cluster and /admin/reshard with this key (admin scope alone; shows in the process list: prefer $TESSERA_ADMIN_KEY or an admin line in --api-key-file)')
    .option('--max-num-seqs <n>', 'sequences in the running batch at once', numberOption('--max-num-seqs', 1, 4096, true), DEFAULT_CORE_OPTIONS.maxNumSeqs)
    .option('--max-model-len <n>', "longest prompt + output (default: the model's context, capped by the KV cache)", numberOption('--max-model-len', 2, 1e7, true))
    .option('--max-batch-tokens <n>', 'tokens per engine step, decode and chunked prefill together', numberOption('--max-batch-tokens', 1, 1e6, true), DEFAULT_CORE_OPTIONS.maxBatchTokens)
    .option('--kv-cache-mib <n>', 'KV cache memory budget in MiB', numberOption('--kv-cache-mib', 0.01, 1e7), DEFAULT_CORE_OPTIONS.kvCacheMib)
    .addOption(kvCacheDtypeOption())
    .option('--max-waiting <n>', 'queued sequences beyond the running ones before 429 (default 4 × --max-num-seqs)', numberOption('--max-waiting', 0, 1e7, true))
    .option('--max-body-bytes <n>', 'larger request bodies get 413', numberOption('--max-body-bytes', 1024, 2 ** 31, true), DEFAULT_MAX_BODY_BYTES)
    .option('--no-prefix-caching', 'do not share KV blocks between requests with a common prefix')
    .option('--served-model-name <name>', 'model name clients use (default: the --model value)')
    .option('--replicas <n|P:D>', 'run N replica processes (cores split between them) behind a router on --host/--port; the routing flags below apply; P:D (with --pd) runs P prefill and D decode replicas', replicasOption)
    .option('--drain-timeout <seconds>', 'on SIGTERM: seconds to let requests in flight finish before ending them with a retryable 503 (a router resumes them elsewhere)', numberOption('--drain-timeout', 0, 86400), 30)
    .option('--verbose', 'print stack traces on errors');
  addSecurityOptions(command, 'require Authorization: Bearer KEY (scopes inference and metrics; default: $TESSERA_API_KEY, else no key)');
  addPdOptions(addRoutingOptions(addParallelOptions(command))).action(async (options: ServeReplicasOptions) => {
      const log = (line: string): void => void process.stderr.write(`${line}\n`);
      exitWithParent();
      if (options.replicas !== undefined) return serveReplicas(options, log);
      const mesh = meshPlanOf(options);
      const { keys, tls } = securityOf(options, log);
      const server = await launchServer({
        model: options.model,
        tokenizerPath: options.tokenizer,
        backend: options.backend,
        threads: options.threads,
        host: options.host,
        port: options.port,
        keys,
        tls,
        maxBodyBytes: options.maxBodyBytes,
        servedModelName: options.servedModelName,
        maxWaiting: options.maxWaiting,
        mesh,
        trace: mesh ? undefined : options.trace,
        pd: pdOf(options),
        core: { maxNumSeqs: options.maxNumSeqs, maxModelLen: options.maxModelLen, maxBatchTokens: options.maxBatchTokens, kvCacheMib: options.kvCacheMib, kvCacheDtype: options.kvCacheDtype, prefixCaching: options.prefixCaching },
        log,
      });
      stopOnSignals(server, options.drainTimeout * 1000, log);
    });
}
