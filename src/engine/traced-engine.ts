/**
 * `--trace FILE` on one process: the engine computes with a traced backend,
 * and its transformer records a step span around each forward pass, so the
 * file shows the same step → op nesting as a mesh rank's, as rank 0.
 */
import type { Backend } from '../backend/backend.js';
import { tracedBackend } from '../backend/traced-backend.js';
import type { ModelConfig } from '../core/model-config.js';
import { TRACE_THREADS, epochMicros, type TraceEvent } from '../core/trace-event.js';
import { Engine } from './engine.js';
import type { Batch } from '../model/batch.js';
import { Transformer } from '../model/transformer.js';
import type { LoadProgress, TransformerWeights } from '../model/transformer-weights.js';
import type { KvDtype } from '../core/kv-dtype.js';

/** A run on one process is drawn as rank 0. */
const PID = 0;

/** A Transformer that records a 'step' span per forward pass (one engine step), as a mesh rank does. */
export class SteppedTransformer extends Transformer {
  constructor(
    config: ModelConfig,
    weights: TransformerWeights,
    backend: Backend,
    private readonly events: TraceEvent[],
  ) {
    super(config, weights, backend);
  }

  override async forwardBatch(batch: Batch): Promise<Float32Array> {
    const started = epochMicros();
    try {
      return await super.forwardBatch(batch);
    } finally {
      const args = { tokens: batch.ids.length, sequences: batch.segments.length };
      this.events.push({ name: 'step', ph: 'X', ts: started, dur: epochMicros() - started, pid: PID, tid: TRACE_THREADS.compute, args });
    }
  }
}

export interface TracedEngineOptions {
  /** The untraced backend; the engine computes through a traced wrapper of it. */
  backend: Backend;
  tokenizerPath?: string;
  onProgress?: LoadProgress;
  kvCacheDtype?: KvDtype;
}

/** Engine.open, with every step and backend op (weight loads included) recorded into `events`. */
export function openTracedEngine(modelPath: string, options: TracedEngineOptions, events: TraceEvent[]): Promise<Engine> {
  return Engine.open(modelPath, {
    ...options,
    backend: tracedBackend(options.backend, { events, pid: PID }),
    transformer: (config, weights, backend) => new SteppedTransformer(config, weights, backend, events),
  });
}
