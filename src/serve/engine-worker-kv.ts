/**
 * The engine worker's KV transfers (disaggregated prefill and decode): the
 * core gets a layer-tapped runner, so a prefill's rows stream out as each
 * layer writes them, and a KvTransfers that talks to the host in 'kv'
 * messages (row buffers transferred, not copied), or, over a link with a
 * shared-memory ring, copies the rows itself between its pool and the ring
 * (KvRings): so where the KV lives in this thread's host memory between
 * layers (one process on a CPU backend). A mesh keeps its KV on the ranks:
 * it reads each step's exported rows back from them
 * (src/cluster/mesh-kv-export.ts) and writes imported rows into them
 * (src/cluster/mesh-kv-import.ts); its thread copies through the rings all
 * the same. A device backend keeps its KV on the device: such engines say
 * `kvTransfer: false` and serve colocated.
 */
import type { Backend, KvPool } from '../backend/backend.js';
import { EngineCore, type EngineCoreOptions, type ModelRunner } from '../engine/engine-core.js';
import type { Engine } from '../engine/engine.js';
import type { KvFromEngine } from '../engine/kv-messages.js';
import { KvTransfers, type KvTransfersOptions } from '../engine/kv-transfers.js';
import { KvRings } from '../disagg/kv-ring.js';
import { describePools, nativeCopier } from '../disagg/kv-direct.js';
import { LayerTapRunner, tappable } from '../engine/layer-tap-runner.js';
import { MeshTransformer } from '../cluster/mesh-transformer.js';
import { MeshKvExporter } from '../cluster/mesh-kv-export.js';
import { MeshRowSink } from '../cluster/mesh-kv-import.js';
import type { WorkerMessage } from './engine-messages.js';

export interface KvCore {
  core: EngineCore;
  kv: KvTransfers | undefined;
  /** The links' shared-memory rings this thread copies rows through (with kv). */
  rings: KvRings | undefined;
}

/** The engine core, with KV transfers when this engine can take part in them. */
export function openKvCore(engine: Engine, runner: ModelRunner, backend: Backend | undefined, options: EngineCoreOptions, send: (message: WorkerMessage, transfer?: ArrayBuffer[]) => void): KvCore {
  if (runner instanceof MeshTransformer) return openMeshKvCore(engine, runner, options, send);
  if (!backend || runner !== engine.transformer || !tappable(backend)) return { core: new EngineCore(runner, engine.config, engine.tokenizer, options), kv: undefined, rings: undefined };
  const rings = new KvRings((message) => send({ type: 'kv-ring', message }));
  let kv: KvTransfers | undefined;
  const tapped = new LayerTapRunner(engine.transformer, { get active() { return kv?.active ?? false; }, afterLayer: (layer, batch) => kv?.afterLayer(layer, batch) });
  const core = new EngineCore(tapped, engine.config, engine.tokenizer, options);
  prefault(core.blocks.cache);
  kv = new KvTransfers(core, { ...toHost(send), ring: rings });
  // Prefill writes go straight into a decode pool on this host when the addon can (src/disagg/kv-direct.ts); this engine's pools are offered likewise.
  const copier = nativeCopier();
  if (copier) rings.useDirect({ copier, pools: () => describePools(core.blocks.cache, engine.config.numLayers, copier), imports: kv });
  return { core, kv, rings };
}

/** A mesh driver's core: exported sequences' rows are read back from the ranks after each step, imported ones written into them. */
function openMeshKvCore(engine: Engine, runner: MeshTransformer, options: EngineCoreOptions, send: (message: WorkerMessage, transfer?: ArrayBuffer[]) => void): KvCore {
  const rings = new KvRings((message) => send({ type: 'kv-ring', message }));
  const core = new EngineCore(runner, engine.config, engine.tokenizer, options);
  const kv = new KvTransfers(core, {
    ...toHost(send),
    ring: rings,
    exporter: (sink) => (runner.kvTap = new MeshKvExporter(runner.coordinator, engine.config, sink, rings)),
    importer: () => new MeshRowSink(runner.coordinator, { numBlocks: core.blocks.cache.numBlocks, blockSize: core.blocks.cache.blockSize }),
  });
  // A mesh's rows come back from its ranks into this thread: they can go straight into a decode pool; its own KV is on the ranks, never offered.
  const copier = nativeCopier();
  if (copier) rings.useDirect({ copier });
  return { core, kv, rings };
}

/** How a KvTransfers talks to the host: 'kv' messages (row buffers moved, not copied) and refusals. */
function toHost(send: (message: WorkerMessage, transfer?: ArrayBuffer[]) => void): Pick<KvTransfersOptions, 'send' | 'reject'> {
  return {
    send: (message) => send({ type: 'kv', message }, buffersOf(message)),
    reject: (sequenceId, code, message) => send({ type: 'rejected', sequenceId, code, message }),
  };
}

/** The row buffers a message carries, each once: they move to the other thread instead of being copied. */
function buffersOf(message: KvFromEngine): ArrayBuffer[] {
  if (message.type !== 'rows') return [];
  return [...new Set([message.keys.buffer as ArrayBuffer, message.values.buffer as ArrayBuffer])];
}

/**
 * Writes every page of the KV pools once, at load. A pool is allocated
 * untouched, so the first write to each page (a prefill's rows, or rows a
 * KV transfer brings in) takes a page fault, which on a virtual machine
 * costs tens of microseconds a page: rows read from the ring into untouched
 * blocks moved at about 210 MB/s here, into touched ones at about 3 GB/s.
 * Paid once at load instead of inside steps and transfers.
 */
function prefault(cache: { keys: readonly (KvPool | undefined)[]; values: readonly (KvPool | undefined)[] }): void {
  for (const pool of [...cache.keys, ...cache.values]) pool?.data.fill(0);
}
