/**
 * What a server needs of the engine it serves from, whatever stands behind
 * it: the engine core in a worker thread of this process (LocalEngineHost,
 * with or without a mesh of ranks), a replica over HTTP
 * (RemoteEngineHost), or a router over many replicas (RoutedEngineHost).
 * The OpenAI protocol layer (ChoiceRun, serveChoices) sees only this, so a
 * router answers exactly as a replica does. One conformance suite,
 * engine-host.case.ts, runs against every implementation.
 */
import { randomBytes } from 'node:crypto';
import type { ErrorCode, TesseraError } from '../core/errors.js';
import type { KvDtype } from '../core/kv-dtype.js';
import type { StepStats } from '../engine/engine-core.js';
import type { SequenceOutput, SequenceRequest } from '../engine/sequence.js';
import type { MeshControl } from './mesh-control.js';

/**
 * A sequence's id as hosts hand it out: unique across processes and
 * replicas (a random per-process prefix and a counter), never a bare number
 * one host's counter could repeat on another.
 */
export type SequenceId = string & { readonly __brand: 'SequenceId' };

const PROCESS_PREFIX = randomBytes(6).toString('hex');
let nextSequence = 1;

export function newSequenceId(): SequenceId {
  return `seq-${PROCESS_PREFIX}-${nextSequence++}` as SequenceId;
}

/** One output of a sequence as a host delivers it (the engine core's own sequence number stays inside the host). */
export type SequenceUpdate = Omit<SequenceOutput, 'sequenceId'>;

export interface SequenceListener {
  onOutput(output: SequenceUpdate): void;
  /** The sequence failed; no more outputs follow. Retryable codes (api-error.ts) mean another engine may finish it. */
  onError(error: TesseraError): void;
}

export interface EngineLimits {
  maxModelLen: number;
  numBlocks: number;
  /** Tokens per KV block: also the block size of the prefix cache's hashes. */
  blockSize: number;
  /** Element type of the KV cache the blocks are counted in. */
  kvCacheDtype: KvDtype;
  loadMs: number;
  /** The backend the engine computes with. */
  backend: string;
  /** Whether its KV can move to and from other replicas (one process on a CPU backend; not a mesh). */
  kvTransfer?: boolean;
}

/** Whether the host can take and finish work now; `code` says why not. */
export interface HostHealth {
  ready: boolean;
  /** 'ready', or what is wrong ('engine stopped', 'rank lost', 'unreachable', ...). */
  status: string;
  code?: ErrorCode;
}

export interface EngineHost {
  readonly limits: EngineLimits;
  /** Queues a sequence; its outputs (or its error) reach the listener, never synchronously. */
  submit(request: SequenceRequest, listener: SequenceListener): SequenceId;
  /** Stops a sequence and frees what it holds; no more outputs reach its listener. */
  cancel(sequenceId: SequenceId): void;
  /** Sequences submitted and not yet finished, failed or cancelled. */
  readonly activeSequences: number;
  /** The engine's counters and gauges after its latest step (zeros before the first). */
  stats(): StepStats;
  /** Called with the stats of every step (or every load report, for a remote engine). */
  onStats(listener: (stats: StepStats) => void): void;
  health(): HostHealth;
  /** The admin side of a mesh of ranks, when this host drives one (admin-routes.ts). */
  readonly mesh?: MeshControl;
  close(): Promise<void>;
}

export const EMPTY_STATS: StepStats = Object.freeze({
  batchSequences: 0,
  batchTokens: 0,
  waiting: 0,
  running: 0,
  blocksUsed: 0,
  blocksFree: 0,
  prefixQueriedTokens: 0,
  prefixHitTokens: 0,
  preemptions: 0,
});
