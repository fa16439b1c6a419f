/**
 * Opens an Engine whose model runs on a (tp, pp) mesh of worker processes:
 * the coordinator reads only the config and tokenizer; the ranks load their
 * shards. The engine takes every sequence's blocks from one block table of a
 * full context (one context-long sequence at a time), whose layout and block
 * ids the ranks mirror; it allocates no KV of its own (the ranks hold it),
 * and the accounting is made on first use, so a server (whose engine core
 * drives the ranks from its own blocks) makes none.
 */
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import { Engine } from '../engine/engine.js';
import { openModelFiles } from '../engine/model-files.js';
import { DEFAULT_BLOCK_SIZE, KvCache } from '../engine/kv-cache.js';
import { DEFAULT_KV_DTYPE } from '../core/kv-dtype.js';
import { MeshCoordinator, type CoordinatorOptions } from './coordinator.js';
import { MeshTransformer } from './mesh-transformer.js';
import { modelIdentity } from './model-identity.js';

export type MeshEngineOptions = Omit<CoordinatorOptions, 'modelPath'> & {
  /** Decode steps a one-stage mesh computes per round trip (decode-burst.ts); default 1. */
  decodeBurst?: number;
};

export interface MeshEngine {
  /** Runs one sequence at a time; after a re-shard it replays the sequence's tokens itself. */
  engine: Engine;
  coordinator: MeshCoordinator;
  /** The model runner for an engine core: after a re-shard it throws TESSERA_ERR_KV_LOST and the core recomputes its sequences. */
  coreRunner: MeshTransformer;
}

export async function openMeshEngine(modelPath: string, { decodeBurst = 1, ...options }: MeshEngineOptions): Promise<MeshEngine> {
  const files = openModelFiles(modelPath, { tokenizerPath: options.tokenizerPath });
  const modelId = modelIdentity(files);
  files.store.close();
  const coordinator = await MeshCoordinator.start(files.config, { ...options, modelPath, modelId });
  const dtype = options.kvCacheDtype ?? DEFAULT_KV_DTYPE;
  // Block accounting only: the ranks hold the keys and values, so the driver allocates no pool ([0, 0) layers).
  const makeCache = (): KvCache => new KvCache(files.config, Math.ceil(files.config.contextLength / DEFAULT_BLOCK_SIZE), DEFAULT_BLOCK_SIZE, dtype, [0, 0]);
  const engine = Engine.fromTransformer(files, new MeshTransformer(files.config, coordinator, 'replay', decodeBurst), new ReferenceBackend(), coordinator.loadMs, dtype, makeCache);
  return { engine, coordinator, coreRunner: new MeshTransformer(files.config, coordinator, 'report', decodeBurst) };
}
