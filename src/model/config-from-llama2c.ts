/** ModelConfig of a llama2.c checkpoint: its 7-integer header plus llama2.c's fixed choices. */
import type { ModelConfig } from '../core/model-config.js';

export interface Llama2cShape {
  dim: number;
  hiddenDim: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
}

export function configFromLlama2c(header: Llama2cShape): ModelConfig {
  const headDim = header.dim / header.numHeads;
  return {
    architecture: 'llama',
    vocabSize: header.vocabSize,
    hiddenSize: header.dim,
    intermediateSize: header.hiddenDim,
    numLayers: header.numLayers,
    numHeads: header.numHeads,
    numKvHeads: header.numKvHeads,
    headDim,
    ropeDims: headDim,
    // llama2.c's run.c hard-codes these.
    ropeTheta: 10000,
    ropeStyle: 'adjacent',
    rmsNormEps: 1e-5,
    contextLength: header.seqLen,
    tiedEmbeddings: header.sharedClassifier,
    qkvBias: false,
    qkNorm: false,
    bosTokenId: 1,
    eosTokenIds: [2],
  };
}
