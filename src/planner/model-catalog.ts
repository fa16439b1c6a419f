/**
 * Models `tessera plan --model NAME` knows by name, with the architecture
 * numbers of their published config.json (docs/planner.md lists the source
 * of each). Only shapes live here; weights never matter to the cost model.
 */
import { TesseraError } from '../core/errors.js';
import type { ModelShape } from './model-shape.js';

function gqa(numHeads: number, numKvHeads: number, headDim: number): ModelShape['attention'] {
  return { kind: 'gqa', numHeads, numKvHeads, headDim };
}

const LLAMA_3_VOCAB = 128256;

const MODELS: readonly ModelShape[] = [
  { name: 'tinyllama-1.1b', numLayers: 22, hiddenSize: 2048, intermediateSize: 5632, vocabSize: 32000, tiedEmbeddings: false, contextLength: 2048, attention: gqa(32, 4, 64) },
  { name: 'llama-2-7b', numLayers: 32, hiddenSize: 4096, intermediateSize: 11008, vocabSize: 32000, tiedEmbeddings: false, contextLength: 4096, attention: gqa(32, 32, 128) },
  { name: 'llama-2-70b', numLayers: 80, hiddenSize: 8192, intermediateSize: 28672, vocabSize: 32000, tiedEmbeddings: false, contextLength: 4096, attention: gqa(64, 8, 128) },
  { name: 'llama-3.1-8b', numLayers: 32, hiddenSize: 4096, intermediateSize: 14336, vocabSize: LLAMA_3_VOCAB, tiedEmbeddings: false, contextLength: 131072, attention: gqa(32, 8, 128) },
  { name: 'llama-3.1-70b', numLayers: 80, hiddenSize: 8192, intermediateSize: 28672, vocabSize: LLAMA_3_VOCAB, tiedEmbeddings: false, contextLength: 131072, attention: gqa(64, 8, 128) },
  { name: 'llama-3.1-405b', numLayers: 126, hiddenSize: 16384, intermediateSize: 53248, vocabSize: LLAMA_3_VOCAB, tiedEmbeddings: false, contextLength: 131072, attention: gqa(128, 8, 128) },
  { name: 'llama-3.3-70b', numLayers: 80, hiddenSize: 8192, intermediateSize: 28672, vocabSize: LLAMA_3_VOCAB, tiedEmbeddings: false, contextLength: 131072, attention: gqa(64, 8, 128) },
  {
    name: 'mixtral-8x7b',
    numLayers: 32,
    hiddenSize: 4096,
    intermediateSize: 14336,
    vocabSize: 32000,
    tiedEmbeddings: false,
    contextLength: 32768,
    attention: gqa(32, 8, 128),
    moe: { numExperts: 8, numExpertsPerToken: 2, expertIntermediateSize: 14336, sharedIntermediateSize: 0, denseLayers: 0 },
  },
  {
    name: 'qwen3-30b-a3b',
    numLayers: 48,
    hiddenSize: 2048,
    intermediateSize: 6144,
    vocabSize: 151936,
    tiedEmbeddings: false,
    contextLength: 40960,
    attention: gqa(32, 4, 128),
    moe: { numExperts: 128, numExpertsPerToken: 8, expertIntermediateSize: 768, sharedIntermediateSize: 0, denseLayers: 0 },
  },
  {
    name: 'qwen3-235b-a22b',
    numLayers: 94,
    hiddenSize: 4096,
    intermediateSize: 12288,
    vocabSize: 151936,
    tiedEmbeddings: false,
    contextLength: 40960,
    attention: gqa(64, 4, 128),
    moe: { numExperts: 128, numExpertsPerToken: 8, expertIntermediateSize: 1536, sharedIntermediateSize: 0, denseLayers: 0 },
  },
  {
    name: 'deepseek-v3',
    numLayers: 61,
    hiddenSize: 7168,
    intermediateSize: 18432,
    vocabSize: 129280,
    tiedEmbeddings: false,
    contextLength: 163840,
    attention: { kind: 'mla', numHeads: 128, qLoraRank: 1536, kvLoraRank: 512, qkNopeHeadDim: 128, qkRopeHeadDim: 64, vHeadDim: 128 },
    moe: { numExperts: 256, numExpertsPerToken: 8, expertIntermediateSize: 2048, sharedIntermediateSize: 2048, denseLayers: 3 },
  },
];

export function modelNames(): string[] {
  return MODELS.map((model) => model.name);
}

export function findCatalogModel(name: string): ModelShape | undefined {
  return MODELS.find((model) => model.name === name.toLowerCase());
}

export function catalogModel(name: string): ModelShape {
  const found = findCatalogModel(name);
  if (!found) {
    throw new TesseraError('TESSERA_ERR_UNKNOWN_MODEL', `unknown model "${name}": give a config.json, a .gguf file, or one of ${modelNames().join(', ')}`);
  }
  return found;
}
