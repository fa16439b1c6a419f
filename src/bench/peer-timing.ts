/**
 * llama.cpp timed the way Tessera's engine times itself: prefill is the time
 * to the first generated token, decode the rate of the tokens after it.
 */
import { TesseraError } from '../core/errors.js';

export interface PeerTimings {
  loadMs: number;
  prefill(promptIds: number[]): Promise<number>;
  decode(promptIds: number[], tokens: number): Promise<number>;
  close(): Promise<void>;
}

interface NlcSequence {
  evaluate(tokens: number[], options: { temperature: number }): AsyncGenerator<number, void, void>;
}
interface NlcContext {
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
interface NlcModel {
  createContext(options: { contextSize: number; threads: number; sequences: number; batchSize: number; flashAttention: boolean }): Promise<NlcContext>;
  dispose(): Promise<void>;
}
interface NlcLlama {
  loadModel(options: { modelPath: string }): Promise<NlcModel>;
  dispose(): Promise<void>;
}
interface NlcModule {
  getLlama(options: { gpu: false; build: 'never'; logLevel: 'error' }): Promise<NlcLlama>;
}

export interface PeerOptions {
  threads: number;
  flashAttention: boolean;
  contextSize: number;
}

export async function openPeerTimings(modelPath: string, options: PeerOptions): Promise<PeerTimings> {
  const name = 'node-llama-cpp';
  const module = (await import(name).catch((cause: unknown) => {
    throw new TesseraError('TESSERA_ERR_PEER_UNAVAILABLE', 'the llama.cpp peer needs the node-llama-cpp dev dependency; run npm install', { cause });
  })) as NlcModule;
  const llama = await module.getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  const started = performance.now();
  const model = await llama.loadModel({ modelPath });
  const loadMs = performance.now() - started;

  /** Milliseconds to each generated token, from the start of evaluation. */
  async function run(promptIds: number[], tokens: number): Promise<number[]> {
    const context = await model.createContext({
      contextSize: options.contextSize,
      threads: options.threads,
      sequences: 1,
      batchSize: 512,
      flashAttention: options.flashAttention,
    });
    try {
      const times: number[] = [];
      const start = performance.now();
      for await (const token of context.getSequence().evaluate(promptIds, { temperature: 0 })) {
        void token;
        times.push(performance.now() - start);
        if (times.length >= tokens) break;
      }
      return times;
    } finally {
      await context.dispose();
    }
  }

  return {
    loadMs,
    prefill: async (promptIds) => (promptIds.length / (await run(promptIds, 1))[0]) * 1000,
    decode: async (promptIds, tokens) => {
      const times = await run(promptIds, tokens + 1);
      return (tokens / (times[times.length - 1] - times[0])) * 1000;
    },
    close: async () => {
      await model.dispose();
      await llama.dispose();
    },
  };
}
