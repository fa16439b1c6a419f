/**
 * Compiled constraints of one engine, by constraint: requests with the same
 * schema (a client sends the same one over and over) share the automaton
 * and its masks. Least recently used ones are dropped past the capacity.
 */
import { TesseraError } from '../core/errors.js';
import { compileConstraint, constraintKey, type Constraint } from '../grammar/constraint.js';
import { GrammarAutomaton } from '../grammar/grammar-automaton.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { GrammarCursor } from './grammar-cursor.js';
import { TokenGrammar } from './token-grammar.js';
import { VocabularyTrie } from './vocabulary-trie.js';

const DEFAULT_CAPACITY = 32;
/**
 * A grammar whose automaton has interned this many states is compiled
 * afresh for new requests (a long-running server's json_object meets ever
 * new parse stacks); running sequences keep the one they started with.
 */
const FRESH_AFTER_STATES = 1 << 16;

export class TokenGrammarCache {
  private readonly grammars = new Map<string, TokenGrammar>();

  constructor(
    private readonly tokenizer: Tokenizer,
    /** Length of a logits row. */
    private readonly vocabSize: number,
    private readonly capacity = DEFAULT_CAPACITY,
  ) {}

  get(constraint: Constraint): TokenGrammar {
    const key = constraintKey(constraint);
    let grammar = this.grammars.get(key);
    if (grammar) this.grammars.delete(key);
    if (!grammar || grammar.automaton.stateCount >= FRESH_AFTER_STATES) {
      const trie = VocabularyTrie.of(this.tokenizer);
      if (trie.nodeCount === 0) throw new TesseraError('TESSERA_ERR_GRAMMAR', 'constrained output needs a tokenizer with text; this model has only token ids');
      grammar = new TokenGrammar(new GrammarAutomaton(compileConstraint(constraint)), trie, this.vocabSize);
      if (this.grammars.size >= this.capacity) this.grammars.delete(this.grammars.keys().next().value!);
    }
    this.grammars.set(key, grammar);
    return grammar;
  }

  /** A cursor past `deliveredIds`; `endIds` may end the output once it is complete. */
  cursor(constraint: Constraint, endIds: readonly number[], deliveredIds: readonly number[]): GrammarCursor {
    return new GrammarCursor(this.get(constraint), endIds, deliveredIds);
  }
}
