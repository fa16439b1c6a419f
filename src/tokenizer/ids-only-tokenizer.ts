/**
 * The tokenizer of a model that ships without one (test checkpoints with
 * ids-only reference outputs). Token ids go in and come out as they are;
 * anything that needs text fails with a coded error that says how to give
 * a tokenizer. Streaming yields no text, so a generation still returns its ids.
 */
import { TesseraError } from '../core/errors.js';
import type { Tokenizer } from './tokenizer.js';

export interface IdsOnlyTokenizerOptions {
  vocabSize: number;
  bosId?: number;
  eosIds: readonly number[];
  /** Where a tokenizer was looked for, for the error message. */
  modelPath: string;
}

export class IdsOnlyTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosIds: readonly number[];
  readonly addBosByDefault = false;
  readonly chatTemplate = undefined;
  readonly stripsLeadingSpace = false;
  private readonly modelPath: string;

  constructor(options: IdsOnlyTokenizerOptions) {
    this.vocabSize = options.vocabSize;
    this.bosId = options.bosId;
    this.eosIds = options.eosIds;
    this.modelPath = options.modelPath;
  }

  encode(): number[] {
    throw this.noText('turn text into tokens');
  }

  decode(): string {
    throw this.noText('turn tokens into text');
  }

  /** No bytes: an ids-only generation streams no text, only ids. */
  tokenBytes(): Uint8Array {
    return new Uint8Array(0);
  }

  tokenText(): string {
    throw this.noText('show a token as text');
  }

  isSpecial(id: number): boolean {
    return id === this.bosId || this.eosIds.includes(id);
  }

  private noText(what: string): TesseraError {
    return new TesseraError(
      'TESSERA_ERR_TOKENIZER',
      `${this.modelPath} has no tokenizer, so Tessera cannot ${what}; pass token ids (--prompt-ids 1,2,3) or put the model's tokenizer.json beside it`,
    );
  }
}
