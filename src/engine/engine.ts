/**
 * One model on one process: load it, compute logits, generate. Generation
 * runs the server's step loop (EngineCore) with one sequence, so there is
 * one generation path: the same sampling, stops, constraints and refusals.
 */
import type { Backend } from '../backend/backend.js';
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError, type ErrorCode } from '../core/errors.js';
import { loadTransformerWeights, type LoadProgress, type TransformerWeights } from '../model/transformer-weights.js';
import { Transformer } from '../model/transformer.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { SequenceKv } from '../model/batch.js';
import type { GeneratedToken, GenerationRequest, GenerationResult } from './generation.js';
import { DEFAULT_BLOCK_SIZE, KvCache } from './kv-cache.js';
import { DEFAULT_KV_DTYPE, parseKvDtype, type KvDtype } from '../core/kv-dtype.js';
import { openModelFiles, type ModelFiles } from './model-files.js';
import { samplingParams } from './sampler.js';
import { EngineCore } from './engine-core.js';

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
    this.validatePrompt(promptIds);
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

  /**
   * Streams generated tokens; the generator's return value is the whole
   * result. It runs the serving step loop (EngineCore) on this model with one
   * sequence, so sampling, stop strings, end of sequence, constraints and the
   * context check are the server's own: a request that does not fit the
   * context is refused (TESSERA_ERR_CONTEXT_OVERFLOW), never shortened.
   */
  async *generate(request: GenerationRequest): AsyncGenerator<GeneratedToken, GenerationResult> {
    const promptIds = [...request.promptIds];
    // An engine request that names no temperature is greedy; the HTTP layer applies OpenAI's default of 1.
    const sampling = samplingParams({ temperature: 0, ...request.sampling });
    const core = this.coreFor(promptIds.length + request.maxTokens, Math.max(1, promptIds.length));
    core.add(0, { promptIds, maxTokens: request.maxTokens, sampling, stop: request.stop ?? [], ignoreEos: request.ignoreEos ?? false });
    const ids: number[] = [];
    let text = '';
    let finishReason: GenerationResult['finishReason'] = 'length';
    const stepMs: number[] = [];
    while (core.hasWork) {
      const started = performance.now();
      const { outputs } = await core.step();
      stepMs.push(performance.now() - started);
      for (const output of outputs) {
        if (output.error) throw new TesseraError(output.error.code as ErrorCode, output.error.message);
        ids.push(...output.ids);
        text += output.text;
        if (output.finish === 'stop') finishReason = 'stop';
        if (output.ids.length > 0 || output.text !== '') yield { id: output.ids[0] ?? -1, text: output.text };
      }
    }
    // The first step prefills the prompt (in one piece) and samples the first token; each later one decodes.
    const prefillMs = stepMs[0] ?? 0;
    const decodeMs = stepMs.slice(1).reduce((sum, ms) => sum + ms, 0);
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

  /**
   * Several generations on one step loop, batched as the server batches them
   * (every prompt prefilled in the first step, then one decode step for all
   * running sequences at a time): `tessera profile --concurrency`. Each
   * result's ids are the ones it would get alone (DESIGN §4). Timings per
   * result: prefill until its first token, decode from there to its last.
   */
  async completeBatch(requests: readonly GenerationRequest[]): Promise<GenerationResult[]> {
    if (requests.length === 0) return [];
    const prompts = requests.map((request) => [...request.promptIds]);
    const blocks = requests.map((request, i) => Math.ceil(Math.min(Math.max(prompts[i].length + request.maxTokens, 1), this.config.contextLength) / DEFAULT_BLOCK_SIZE));
    const core = this.coreFor(
      blocks.reduce((sum, count) => sum + count, 0) * DEFAULT_BLOCK_SIZE,
      prompts.reduce((sum, prompt) => sum + Math.max(1, prompt.length), 0),
      requests.length,
    );
    requests.forEach((request, i) => {
      const sampling = samplingParams({ temperature: 0, ...request.sampling });
      core.add(i, { promptIds: prompts[i], maxTokens: request.maxTokens, sampling, stop: request.stop ?? [], ignoreEos: request.ignoreEos ?? false });
    });
    const results = requests.map((_, i) => ({ ids: [] as number[], text: '', finishReason: 'length' as GenerationResult['finishReason'], firstAt: 0, lastAt: 0 }));
    const started = performance.now();
    while (core.hasWork) {
      const { outputs } = await core.step();
      const now = performance.now();
      for (const output of outputs) {
        if (output.error) throw new TesseraError(output.error.code as ErrorCode, output.error.message);
        const result = results[output.sequenceId];
        if (output.ids.length > 0 && result.ids.length === 0) result.firstAt = now;
        if (output.ids.length > 0) result.lastAt = now;
        result.ids.push(...output.ids);
        result.text += output.text;
        if (output.finish === 'stop') result.finishReason = 'stop';
      }
    }
    return results.map((result, i) => {
      const prefillMs = result.firstAt - started;
      const decodeMs = result.lastAt - result.firstAt;
      return {
        promptIds: prompts[i],
        ids: result.ids,
        text: result.text,
        finishReason: result.finishReason,
        timings: {
          promptTokens: prompts[i].length,
          generatedTokens: result.ids.length,
          prefillMs,
          decodeMs,
          prefillTokensPerSecond: (prompts[i].length / prefillMs) * 1000,
          decodeTokensPerSecond: result.ids.length > 1 ? ((result.ids.length - 1) / decodeMs) * 1000 : 0,
        },
      };
    });
  }

  /**
   * A core for `sequences` sequences: its pool holds `tokens` (never more
   * than the context per sequence; a longer request is then refused by the
   * core's own check), or, on a mesh, is the mesh's pool, whose block count
   * the ranks mirror.
   */
  private coreFor(tokens: number, prefillTokens: number, sequences = 1): EngineCore {
    const blocks = this.makeCache ? this.cache!.numBlocks : Math.ceil(Math.min(Math.max(tokens, 1), this.config.contextLength * sequences) / DEFAULT_BLOCK_SIZE);
    return new EngineCore(this.transformer, this.config, this.tokenizer, {
      kvCacheMib: 0,
      numBlocks: blocks,
      kvCacheDtype: this.kvCacheDtype,
      maxNumSeqs: sequences,
      maxBatchTokens: prefillTokens,
      prefixCaching: false,
    });
  }

  /** Runs a generation to its end. */
  async complete(request: GenerationRequest): Promise<GenerationResult> {
    const steps = this.generate(request);
    for (;;) {
      const step = await steps.next();
      if (step.done) return step.value;
    }
  }

  private validatePrompt(promptIds: readonly number[]): void {
    const vocabSize = this.config.vocabSize;
    for (const id of promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `token id ${id} is outside the vocabulary [0, ${vocabSize})`);
      }
    }
    if (promptIds.length > this.config.contextLength) {
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
