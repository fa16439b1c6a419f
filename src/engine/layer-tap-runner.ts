/**
 * A Transformer as the engine core's ModelRunner, with a tap after every
 * layer while someone listens (a KV export streams each layer's rows as
 * soon as that layer has written them). The layers run one runLayers call
 * each — the same ops in the same order as one call over all of them — so
 * the logits and the KV are the same bits tapped or not. Without a listener
 * it is the plain forward pass.
 *
 * Only for backends that compute when called (the CPU backends): a device
 * backend records a whole step and runs it at the end, so its KV is not
 * on the host between layers; `tappable` says whether a backend qualifies.
 */
import type { Backend } from '../backend/backend.js';
import type { Batch } from '../model/batch.js';
import type { Transformer } from '../model/transformer.js';
import type { ModelRunner } from './engine-core.js';

export interface LayerTap {
  /** Whether anyone listens now (else the pass runs untapped). */
  readonly active: boolean;
  afterLayer(layer: number, batch: Batch): void;
}

export function tappable(backend: Backend): boolean {
  return backend.beginStep === undefined;
}

export class LayerTapRunner implements ModelRunner {
  constructor(
    private readonly transformer: Transformer,
    private readonly tap: LayerTap,
  ) {}

  get expertLoad(): Transformer['expertLoad'] {
    return this.transformer.expertLoad;
  }

  async forwardBatch(batch: Batch): Promise<Float32Array> {
    if (!this.tap.active) return this.transformer.forwardBatch(batch);
    const hidden = this.transformer.embed(batch.ids);
    for (let layer = 0; layer < this.transformer.config.numLayers; layer++) {
      await this.transformer.runLayers(hidden, batch, layer, layer + 1);
      this.tap.afterLayer(layer, batch);
    }
    return this.transformer.head(hidden, batch);
  }
}
