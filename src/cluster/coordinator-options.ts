/** How a mesh coordinator is started (flags of run, logits and serve; tests). */
import type { KvDtype } from '../core/kv-dtype.js';
import type { MeshShape } from '../parallel/mesh.js';
import type { TransportChoice } from '../parallel/transport.js';
import type { HeartbeatTiming, RankBackend } from './control-message.js';
import type { ReshardRecord } from './reshard-log.js';

export interface CoordinatorOptions extends MeshShape {
  modelPath: string;
  tokenizerPath?: string;
  /** Layers per stage (`--pp-layers 10,12`); even when absent. */
  ppLayers?: number[];
  /** Expert parallelism: 1 (default) or tp; checked by checkExpertParallel. */
  ep?: number;
  /** auto: chosen per plan (planTransport in rollout.ts). */
  transport: TransportChoice;
  /** Fork the ranks on this machine; when false, wait for workers to join. */
  spawn: boolean;
  /** Where workers join (default 127.0.0.1, any free port). */
  host?: string;
  port?: number;
  /** The join token (default: a random one). */
  token?: string;
  /** Write every rank's step, backend op and message spans, and the re-shards, here (Chrome trace JSON) at close. */
  trace?: string;
  /** Backend of every rank (default reference, as a one-process Engine), and threads per rank. */
  backend?: RankBackend;
  threads?: number;
  /** Element type of every rank's KV cache (default f32). */
  kvCacheDtype?: KvDtype;
  /** Heartbeat interval and timeout (default 250 ms and 2 s). */
  heartbeat?: Partial<HeartbeatTiming>;
  /** How long a step waits for the mesh to come back after a loss before it fails (default 60 s). */
  recoveryWaitMs?: number;
  /** Called with each re-shard's record as it fills in. */
  onReshard?: (record: ReshardRecord) => void;
  log?: (line: string) => void;
}
