/** Messages between the API process (EngineHost) and the engine worker thread. */
import type { EngineCoreOptions, StepReport } from './engine-core.js';
import type { SequenceRequest } from './sequence.js';

export interface WorkerSetup {
  modelPath: string;
  tokenizerPath?: string;
  core: EngineCoreOptions;
}

export type HostMessage =
  | { type: 'add'; sequenceId: number; request: SequenceRequest }
  | { type: 'cancel'; sequenceId: number }
  | { type: 'stop' };

export type WorkerMessage =
  | { type: 'ready'; maxModelLen: number; numBlocks: number; blockSize: number; loadMs: number }
  | { type: 'load-failed'; code: string; message: string }
  | { type: 'step'; report: StepReport }
  | { type: 'rejected'; sequenceId: number; code: string; message: string }
  | { type: 'step-failed'; sequenceIds: number[]; code: string; message: string };
