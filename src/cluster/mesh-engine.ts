/**
 * Opens an Engine whose model runs on a (tp, pp) mesh of worker processes:
 * the coordinator reads only the config and tokenizer; the ranks load their
 * shards.
 */
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import { Engine } from '../engine/engine.js';
import { openModelFiles } from '../engine/model-files.js';
import { MeshCoordinator, type CoordinatorOptions } from './coordinator.js';
import { MeshTransformer } from './mesh-transformer.js';

export type MeshEngineOptions = Omit<CoordinatorOptions, 'modelPath'>;

export interface MeshEngine {
  engine: Engine;
  coordinator: MeshCoordinator;
}

export async function openMeshEngine(modelPath: string, options: MeshEngineOptions): Promise<MeshEngine> {
  const files = openModelFiles(modelPath, { tokenizerPath: options.tokenizerPath });
  files.store.close();
  const coordinator = await MeshCoordinator.start(files.config, { ...options, modelPath });
  const engine = Engine.fromTransformer(files, new MeshTransformer(files.config, coordinator), new ReferenceBackend(), coordinator.loadMs, options.kvCacheDtype);
  return { engine, coordinator };
}
