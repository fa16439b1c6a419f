/**
 * The sequences of one API request (n choices per prompt) running in the
 * engine: outputs arrive per choice as they are produced; the run ends when
 * every choice has finished, fails as a whole when one fails, and can be
 * cancelled (client gone), which frees every choice's blocks at once.
 */
import type { ServerResponse } from 'node:http';
import { TesseraError } from '../core/errors.js';
import type { EngineHost, SequenceId, SequenceUpdate } from './engine-host.js';
import type { SequenceRequest, TokenLogprob } from '../engine/sequence.js';
import type { ServeMetrics } from './metrics.js';
import type { Abortable } from './admission.js';

/** Everything one choice produced, for non-streaming responses and usage. */
export interface ChoiceResult {
  ids: number[];
  text: string;
  logprobs: TokenLogprob[];
  finish: 'stop' | 'length';
  promptTokens: number;
  cachedPromptTokens: number;
}

export type ChoiceListener = (index: number, output: SequenceUpdate) => void;

export class ChoiceRun implements Abortable {
  readonly results: ChoiceResult[];
  private readonly sequenceIds: SequenceId[] = [];
  private readonly firstTokenAt: (number | undefined)[];
  private remaining: number;
  private settled = false;
  readonly done: Promise<ChoiceResult[]>;
  private resolve!: (results: ChoiceResult[]) => void;
  private reject!: (error: TesseraError) => void;

  constructor(
    private readonly host: EngineHost,
    requests: readonly SequenceRequest[],
    private readonly metrics: ServeMetrics,
    private readonly listener?: ChoiceListener,
  ) {
    const started = performance.now();
    this.remaining = requests.length;
    this.results = requests.map((request) => ({ ids: [], text: '', logprobs: [], finish: 'length', promptTokens: request.promptIds.length, cachedPromptTokens: 0 }));
    this.firstTokenAt = requests.map(() => undefined);
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // A failed run is awaited by its handler; keep Node from reporting it as unhandled before that.
    this.done.catch(() => undefined);
    requests.forEach((request, index) => {
      const sequenceId = host.submit(request, {
        onOutput: (output) => this.receive(index, output, started),
        onError: (error) => this.abort(error),
      });
      this.sequenceIds.push(sequenceId);
    });
  }

  /** Cancels the run when the client goes away (or has already gone). */
  cancelOnClose(response: ServerResponse): void {
    response.on('close', () => this.cancel());
    if (response.destroyed) this.cancel();
  }

  /** Stops every choice still running and frees its blocks. */
  cancel(): void {
    if (this.settled) return;
    this.metrics.cancelled.inc();
    this.stopAll();
    // Nobody is left to answer; settle so the handler does not wait forever.
    this.reject(new TesseraError('TESSERA_ERR_INTERNAL', 'the client went away; the request was cancelled'));
  }

  private stopAll(): void {
    this.settled = true;
    for (const sequenceId of this.sequenceIds) this.host.cancel(sequenceId);
  }

  private receive(index: number, output: SequenceUpdate, started: number): void {
    if (this.settled) return;
    const result = this.results[index];
    result.ids.push(...output.ids);
    result.text += output.text;
    if (output.logprobs) result.logprobs.push(...output.logprobs);
    result.cachedPromptTokens = output.cachedPromptTokens;
    const now = performance.now();
    if (output.ids.length > 0 && this.firstTokenAt[index] === undefined) {
      this.firstTokenAt[index] = now;
      this.metrics.timeToFirstToken.observe((now - started) / 1000);
    }
    if (output.finish === 'stop' || output.finish === 'length') result.finish = output.finish;
    this.listener?.(index, output);
    if (output.finish) this.finishChoice(index, now, started);
  }

  private finishChoice(index: number, now: number, started: number): void {
    const result = this.results[index];
    const first = this.firstTokenAt[index];
    if (first !== undefined && result.ids.length > 1) this.metrics.timePerOutputToken.observe((now - first) / 1000 / (result.ids.length - 1));
    this.metrics.generationTokens.inc(result.ids.length);
    this.remaining--;
    if (this.remaining === 0) {
      this.settled = true;
      this.metrics.endToEnd.observe((now - started) / 1000);
      this.resolve(this.results);
    }
  }

  /** Ends the run with an error (a failed choice, or a draining server's grace ran out). */
  abort(error: TesseraError): void {
    if (this.settled) return;
    this.stopAll();
    this.reject(error);
  }
}
