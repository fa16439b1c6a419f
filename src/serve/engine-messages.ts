/** Messages between the API process (LocalEngineHost) and the engine worker thread. */
import type { BackendChoice } from '../backend/native/select-backend.js';
import type { MeshEngineOptions } from '../cluster/mesh-engine.js';
import type { EngineCoreOptions, StepReport } from '../engine/engine-core.js';
import type { SequenceRequest } from '../engine/sequence.js';
import type { KvDtype } from '../core/kv-dtype.js';
import type { KvFromEngine, KvRole, KvToEngine } from '../engine/kv-messages.js';
import type { KvRingFromEngine, KvRingToEngine } from '../disagg/kv-ring.js';
import type { HostHealth } from './engine-host.js';
import type { ClusterView } from '../cluster/cluster-view.js';
import type { ReshardRecord } from '../cluster/reshard-log.js';

/** What the admin routes ask of a mesh (src/serve/admin-routes.ts). */
export type AdminAction = { kind: 'describe' } | { kind: 'reshard'; shape: { tp: number; pp: number } | 'auto' };

export interface WorkerSetup {
  modelPath: string;
  tokenizerPath?: string;
  core: EngineCoreOptions;
  backend?: BackendChoice;
  /** Compute threads of the native backend. */
  threads?: number;
  /** Run the model on a mesh of worker processes (--tp/--pp) instead of this thread. */
  mesh?: Omit<MeshEngineOptions, 'log'>;
  /** Without a mesh: write the engine's step and op spans here (Chrome trace JSON) when it stops. */
  trace?: string;
  /**
   * Nice value of the engine thread, set before its compute threads start
   * (they inherit it): 0 normal, up to 19 lowest (Linux nice is per thread,
   * so the process's event loop keeps its priority).
   */
  nice?: number;
}

export type HostMessage =
  /** `kv`: the sequence's part in a KV transfer (disaggregated prefill and decode). */
  | { type: 'add'; sequenceId: number; request: SequenceRequest; kv?: KvRole }
  | { type: 'kv'; message: KvToEngine }
  /** The KV links' shared-memory rings, handed to the engine's thread (src/disagg/kv-ring.ts). */
  | { type: 'kv-ring'; message: KvRingToEngine }
  | { type: 'cancel'; sequenceId: number }
  | { type: 'admin'; requestId: number; action: AdminAction }
  | { type: 'stop' };

export type WorkerMessage =
  | { type: 'ready'; maxModelLen: number; numBlocks: number; blockSize: number; kvCacheDtype: KvDtype; loadMs: number; backend: string; kvTransfer: boolean }
  | { type: 'kv'; message: KvFromEngine }
  | { type: 'kv-ring'; message: KvRingFromEngine }
  | { type: 'load-failed'; code: string; message: string }
  | { type: 'step'; report: StepReport }
  | { type: 'rejected'; sequenceId: number; code: string; message: string }
  | { type: 'step-failed'; sequenceIds: number[]; code: string; message: string }
  /** The engine's own view of whether it can step (a mesh re-sharding after a lost rank cannot), sent when it changes. */
  | { type: 'health'; health: HostHealth }
  | { type: 'admin-reply'; requestId: number; view?: ClusterView; error?: { code: string; message: string } }
  /** A mesh re-shard's record, each time it fills in (detected, loaded, first logits, re-prefilled). */
  | { type: 'reshard'; record: ReshardRecord };
