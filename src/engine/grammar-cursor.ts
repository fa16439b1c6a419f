/**
 * Where one sequence stands in its constraint: a position of a shared
 * TokenGrammar, moved by every token delivered. It is built from the
 * request and the ids delivered so far, so a sequence resumed elsewhere
 * (router failover, re-sharding) stands exactly where it stood (DESIGN §4).
 */
import { TesseraError } from '../core/errors.js';
import { DEAD } from '../grammar/grammar-automaton.js';
import { maskedLogits, type TokenGrammar } from './token-grammar.js';

export class GrammarCursor {
  private position: number;

  /** `endIds`: the ids that may end the output once it is complete (none with ignore_eos). */
  constructor(
    private readonly grammar: TokenGrammar,
    private readonly endIds: readonly number[],
    deliveredIds: readonly number[] = [],
  ) {
    this.position = grammar.start;
    for (const id of deliveredIds) this.advance(id);
  }

  /** Whether token `id` may come next. */
  allows(id: number): boolean {
    if (this.endIds.includes(id)) return this.grammar.isAccepting(this.position);
    return this.grammar.next(this.position, id) !== DEAD;
  }

  /** [vocabSize] a copy of the logits with every id the constraint forbids at −∞. */
  constrain(logits: Float32Array): Float32Array {
    return maskedLogits(logits, this.grammar.mask(this.position), this.endsNow());
  }

  /** The allowed token with the highest score, ties to the lowest id: argmax of the masked scores, without a copy. */
  bestAllowed(scores: Float32Array): number {
    const mask = this.grammar.mask(this.position);
    let best = -1;
    for (let word = 0; word < mask.length; word++) {
      let bits = mask[word];
      while (bits !== 0) {
        const low = bits & -bits;
        const id = word * 32 + 31 - Math.clz32(low);
        if (best < 0 || scores[id] > scores[best]) best = id;
        bits ^= low;
      }
    }
    for (const id of this.endsNow()) if (best < 0 || scores[id] > scores[best] || (scores[id] === scores[best] && id < best)) best = id;
    if (best < 0) throw new TesseraError('TESSERA_ERR_GRAMMAR', 'no token of the vocabulary can continue the constrained output here; the tokenizer cannot write what the constraint requires');
    return best;
  }

  /** Whether this position's mask is already known (so using it costs no walk). */
  get maskCached(): boolean {
    return this.grammar.cachedMask(this.position) !== undefined;
  }

  private endsNow(): readonly number[] {
    return this.grammar.isAccepting(this.position) ? this.endIds : [];
  }

  /** Moves past a delivered token; a token the constraint forbids is an error (a resumed id that does not fit). */
  advance(id: number): void {
    const next = this.grammar.next(this.position, id);
    if (next === DEAD) throw new TesseraError('TESSERA_ERR_GRAMMAR', `token id ${id} does not continue the constrained output`);
    this.position = next;
  }

  /** The output is complete and nothing may follow it. */
  get finished(): boolean {
    return this.grammar.isFinished(this.position);
  }
}
