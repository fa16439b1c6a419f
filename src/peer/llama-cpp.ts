/**
 * llama.cpp as a conformance peer, through the node-llama-cpp package (a dev
 * dependency). It is imported dynamically so production code never needs it.
 * Every call gets a fresh context, so no KV cache is reused across calls and
 * each result depends only on its arguments.
 */
import { TesseraError } from '../core/errors.js';

export interface LlamaCppPeerOptions {
  /** CPU threads; 1 keeps small models deterministic and cheap. */
  threads?: number;
  contextSize?: number;
}

export interface TokenLogit {
  token: number;
  logit: number;
}

export interface LlamaCppPeer {
  /** Token ids of `text` as llama.cpp's tokenizer splits it (no BOS added, specials parsed). */
  tokenize(text: string): number[];
  /** Text of token ids. */
  detokenize(ids: number[]): string;
  /** `count` tokens chosen greedily after `promptIds` (stops early at end-of-generation tokens). */
  greedy(promptIds: number[], count: number): Promise<number[]>;
  /** The `top` highest next-token logits after `promptIds`, highest first. */
  nextTokenLogits(promptIds: number[], top: number): Promise<TokenLogit[]>;
  close(): Promise<void>;
}

/* Only the parts of node-llama-cpp's API used here, so this module boundary has no `any`. */
export interface NlcSequence {
  evaluate(tokens: number[], options: { temperature: number }): AsyncGenerator<number, void, void>;
  controlledEvaluate(
    input: Array<number | [number, { generateNext: { logits: { filter: { tokens: number[]; includeTop: number } } } }]>,
  ): Promise<Array<undefined | { next: { logits?: Map<number, number> } }>>;
}
export interface NlcContext {
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
export interface NlcModel {
  tokenize(text: string, specialTokens?: boolean): number[];
  detokenize(tokens: number[], specialTokens?: boolean): string;
  isEogToken(token: number): boolean;
  createContext(options: { contextSize: number; threads: number; sequences: number; batchSize?: number; flashAttention?: boolean }): Promise<NlcContext>;
  dispose(): Promise<void>;
}
export interface NlcLlama {
  loadModel(options: { modelPath: string }): Promise<NlcModel>;
  dispose(): Promise<void>;
}
export interface NlcModule {
  getLlama(options: { gpu: false; build: 'never'; logLevel: 'error' }): Promise<NlcLlama>;
}

export async function importNodeLlamaCpp(): Promise<NlcModule> {
  const name = 'node-llama-cpp';
  try {
    return (await import(name)) as NlcModule;
  } catch (cause) {
    throw new TesseraError(
      'TESSERA_ERR_PEER_UNAVAILABLE',
      'the llama.cpp peer needs the node-llama-cpp package; install the dev dependencies (npm install) to use it',
      { cause },
    );
  }
}

export async function openLlamaCppPeer(modelPath: string, options: LlamaCppPeerOptions = {}): Promise<LlamaCppPeer> {
  const threads = options.threads ?? 1;
  const contextSize = options.contextSize ?? 256;
  const module = await importNodeLlamaCpp();
  const llama = await module.getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  let model: NlcModel;
  try {
    model = await llama.loadModel({ modelPath });
  } catch (cause) {
    await llama.dispose();
    throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `llama.cpp could not load ${modelPath}: ${String(cause)}`, { cause });
  }

  /** Runs `work` on a fresh single-sequence context and disposes it after. */
  async function withSequence<T>(work: (sequence: NlcSequence) => Promise<T>): Promise<T> {
    const context = await model.createContext({ contextSize, threads, sequences: 1 });
    try {
      return await work(context.getSequence());
    } finally {
      await context.dispose();
    }
  }

  return {
    tokenize: (text) => Array.from(model.tokenize(text, true)),
    detokenize: (ids) => model.detokenize(ids, true),
    greedy: (promptIds, count) =>
      withSequence(async (sequence) => {
        const generated: number[] = [];
        if (count <= 0) return generated;
        for await (const token of sequence.evaluate(promptIds, { temperature: 0 })) {
          generated.push(token);
          if (generated.length >= count || model.isEogToken(token)) break;
        }
        return generated;
      }),
    nextTokenLogits: (promptIds, top) =>
      withSequence(async (sequence) => {
        const last = promptIds.length - 1;
        const input = promptIds.map((id, index) =>
          index === last ? ([id, { generateNext: { logits: { filter: { tokens: [], includeTop: top } } } }] as const) : id,
        );
        const output = await sequence.controlledEvaluate(input as Parameters<NlcSequence['controlledEvaluate']>[0]);
        const logits = output[last]?.next.logits ?? new Map<number, number>();
        return [...logits.entries()]
          .map(([token, logit]) => ({ token, logit }))
          .sort((a, b) => b.logit - a.logit)
          .slice(0, top);
      }),
    close: async () => {
      await model.dispose();
      await llama.dispose();
    },
  };
}
