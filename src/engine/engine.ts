/**
 * One model on one process: load it, compute logits, generate. The step loop
 * of a server (continuous batching) builds on the same Transformer and
 * KvCache; this class runs one sequence at a time.
 */
import type { Backend } from '../backend/backend.js';
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import { loadTransformerWeights, type LoadProgress, type TransformerWeights } from '../model/transformer-weights.js';
import { Transformer } from '../model/transformer.js';
import { StreamDecoder } from '../tokenizer/stream-decoder.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { SequenceKv } from '../model/batch.js';
import type { GeneratedToken, GenerationRequest, GenerationResult } from './generation.js';
import { DEFAULT_BLOCK_SIZE, KvCache } from './kv-cache.js';
import { DEFAULT_KV_DTYPE, parseKvDtype, type KvDtype } from '../core/kv-dtype.js';
import { openModelFiles, type ModelFiles } from './model-files.js';
import { samplingParams, sampleToken, type SamplingParams } from './sampler.js';
import { StopMatcher } from './stop-matcher.js';

export interface EngineOptions {
  backend?: Backend;
  /** Tokenizer file for formats that keep it apart (llama2.c). */
  tokenizerPath?: string;
  onProgress?: LoadProgress;
  /** Element type of the KV cache (default f32). */
  kvCacheDtype?: KvDtype;
  /** Builds the model from its loaded weights (default: a plain Transformer; tracing records steps). */
  transformer?: (config: ModelConfig, weights: TransformerWeights, backend: Backend) => Transformer;
}

export class Engine {
  private sharedCache: KvCache | undefined;

  private constructor(
    readonly files: ModelFiles,
    readonly transformer: Transformer,
    readonly backend: Backend,
    readonly loadMs: number,
    readonly kvCacheDtype: KvDtype = DEFAULT_KV_DTYPE,
    /** Makes the one pool every call takes its blocks from (a mesh's ranks mirror it); absent, each call makes its own. */
    private readonly makeCache?: () => KvCache,
  ) {}

  /**
   * The shared pool, made on first use: a server on a mesh drives the ranks
   * from its engine core's pool and never calls logits or generate here, so it
   * allocates none.
   */
  get cache(): KvCache | undefined {
    if (this.makeCache) this.sharedCache ??= this.makeCache();
    return this.sharedCache;
  }

  static async open(modelPath: string, options: EngineOptions = {}): Promise<Engine> {
    const started = performance.now();
    const kvCacheDtype = parseKvDtype(options.kvCacheDtype ?? DEFAULT_KV_DTYPE, 'kvCacheDtype');
    const files = openModelFiles(modelPath, { tokenizerPath: options.tokenizerPath });
    try {
      const backend = options.backend ?? new ReferenceBackend();
      const weights = loadTransformerWeights(files.store, files.config, backend, options.onProgress);
      const transformer = options.transformer?.(files.config, weights, backend) ?? new Transformer(files.config, weights, backend);
      return new Engine(files, transformer, backend, performance.now() - started, kvCacheDtype);
    } finally {
      files.store.close();
    }
  }

  /**
   * An engine over a model built elsewhere — the ranks of a mesh
   * (src/cluster/mesh-transformer.ts) — with the same sampling, stop and
   * streaming logic as a local one. `makeCache`: makes the one pool its
   * sequences' blocks come from (the ranks mirror a single pool).
   */
  static fromTransformer(
    files: ModelFiles,
    transformer: Transformer,
    backend: Backend,
    loadMs: number,
    kvCacheDtype: KvDtype = DEFAULT_KV_DTYPE,
    makeCache?: () => KvCache,
  ): Engine {
    return new Engine(files, transformer, backend, loadMs, kvCacheDtype, makeCache);
  }

  get config(): ModelConfig {
    return this.files.config;
  }

  get tokenizer(): Tokenizer {
    return this.files.tokenizer;
  }

  /** Logits at every position of a prompt: [promptIds.length, vocabSize]. */
  async logits(promptIds: readonly number[]): Promise<Float32Array> {
    this.validatePrompt(promptIds, 0);
    const sequence = this.sequenceKv(promptIds.length);
    try {
      return await this.transformer.forward(Int32Array.from(promptIds), positionsFrom(0, promptIds.length), sequence, 'all');
    } finally {
      this.cache?.release(sequence);
    }
  }

  /** Blocks for one sequence of up to `tokens` tokens; from the shared pool they go back with `cache.release`. */
  private sequenceKv(tokens: number): SequenceKv {
    return (this.cache ?? KvCache.forTokens(this.config, tokens, DEFAULT_BLOCK_SIZE, this.kvCacheDtype)).allocate(tokens);
  }

  /** Streams generated tokens; the generator's return value is the whole result. */
  async *generate(request: GenerationRequest): AsyncGenerator<GeneratedToken, GenerationResult> {
    // An engine request that names no temperature is greedy; the HTTP layer applies OpenAI's default of 1.
    const params = samplingParams({ temperature: 0, ...request.sampling });
    const promptIds = [...request.promptIds];
    if (promptIds.length === 0) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'the prompt is empty; give at least one token');
    this.validatePrompt(promptIds, 1);
    const maxTokens = Math.min(request.maxTokens, this.config.contextLength - promptIds.length);
    const sequence = this.sequenceKv(promptIds.length + maxTokens);
    try {
      return yield* this.decode(promptIds, maxTokens, params, request, sequence);
    } finally {
      this.cache?.release(sequence);
    }
  }

  /** The prefill and decode loop of `generate`, in the sequence's blocks. */
  private async *decode(
    promptIds: number[],
    maxTokens: number,
    params: SamplingParams,
    request: GenerationRequest,
    sequence: SequenceKv,
  ): AsyncGenerator<GeneratedToken, GenerationResult> {
    const decoder = new StreamDecoder(this.tokenizer);
    const stops = new StopMatcher(request.stop ?? []);
    const eos = new Set(request.ignoreEos ? [] : this.config.eosTokenIds);
    const ids: number[] = [];
    let text = '';
    let finishReason: GenerationResult['finishReason'] = 'length';

    const prefillStart = performance.now();
    let logits = await this.transformer.forward(Int32Array.from(promptIds), positionsFrom(0, promptIds.length), sequence, 'last');
    const prefillMs = performance.now() - prefillStart;
    const decodeStart = performance.now();
    while (ids.length < maxTokens) {
      const position = promptIds.length + ids.length;
      const id = sampleToken(logits, params, { promptIds, generatedIds: ids }, position);
      if (eos.has(id)) {
        finishReason = 'stop';
        break;
      }
      ids.push(id);
      const shown = stops.push(decoder.push(id));
      text += shown;
      yield { id, text: shown };
      if (stops.stopped) {
        finishReason = 'stop';
        break;
      }
      if (ids.length >= maxTokens) break;
      logits = await this.transformer.forward(Int32Array.of(id), Int32Array.of(position), sequence, 'last');
    }
    const rest = stops.push(decoder.flush()) + stops.flush();
    text += rest;
    if (rest.length > 0) yield { id: -1, text: rest };
    const decodeMs = performance.now() - decodeStart;
    return {
      promptIds,
      ids,
      text,
      finishReason,
      timings: {
        promptTokens: promptIds.length,
        generatedTokens: ids.length,
        prefillMs,
        decodeMs,
        prefillTokensPerSecond: (promptIds.length / prefillMs) * 1000,
        decodeTokensPerSecond: ids.length > 1 ? ((ids.length - 1) / decodeMs) * 1000 : 0,
      },
    };
  }

  /** Runs a generation to its end. */
  async complete(request: GenerationRequest): Promise<GenerationResult> {
    const steps = this.generate(request);
    for (;;) {
      const step = await steps.next();
      if (step.done) return step.value;
    }
  }

  private validatePrompt(promptIds: readonly number[], reserve: number): void {
    const vocabSize = this.config.vocabSize;
    for (const id of promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `token id ${id} is outside the vocabulary [0, ${vocabSize})`);
      }
    }
    if (promptIds.length + reserve > this.config.contextLength) {
      throw new TesseraError(
        'TESSERA_ERR_CONTEXT_OVERFLOW',
        `the prompt has ${promptIds.length} tokens but the model's context holds ${this.config.contextLength}; shorten the prompt`,
      );
    }
  }
}

/** [count] positions start, start+1, … */
function positionsFrom(start: number, count: number): Int32Array {
  const positions = new Int32Array(count);
  for (let i = 0; i < count; i++) positions[i] = start + i;
  return positions;
}
