/**
 * llama.cpp timed the way Tessera's engine times itself: prefill is the time
 * to the first generated token, decode the rate of the tokens after it.
 */
import { importNodeLlamaCpp } from '../peer/llama-cpp.js';

export interface PeerTimings {
  loadMs: number;
  prefill(promptIds: number[]): Promise<number>;
  decode(promptIds: number[], tokens: number): Promise<number>;
  close(): Promise<void>;
}

export interface PeerOptions {
  threads: number;
  flashAttention: boolean;
  contextSize: number;
}

export async function openPeerTimings(modelPath: string, options: PeerOptions): Promise<PeerTimings> {
  const module = await importNodeLlamaCpp();
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
