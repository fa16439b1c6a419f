/**
 * Test helpers over a compiled constraint: whether a text is a sentence of
 * it, and random sentences drawn byte by byte through its automaton (every
 * prefix the automaton allows can be completed, so a walk always ends).
 */
import { compileConstraint, type Constraint } from '../grammar/constraint.js';
import { DEAD, GrammarAutomaton } from '../grammar/grammar-automaton.js';

const encoder = new TextEncoder();

export function automatonOf(constraint: Constraint): GrammarAutomaton {
  return new GrammarAutomaton(compileConstraint(constraint));
}

/** True when the whole text is a sentence. */
export function accepts(automaton: GrammarAutomaton, text: string): boolean {
  const state = automaton.nextAll(automaton.start, encoder.encode(text));
  return state !== DEAD && automaton.isAccepting(state);
}

/** A deterministic generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/** A random sentence: uniform over the allowed bytes, stopping at an accepting state with probability `stop`. */
export function randomSentence(automaton: GrammarAutomaton, random: () => number, stop = 0.3, maxBytes = 4000): string {
  const bytes: number[] = [];
  let state = automaton.start;
  for (;;) {
    if (automaton.isAccepting(state) && (random() < stop || automaton.isFinished(state) || bytes.length >= maxBytes)) break;
    const allowed: number[] = [];
    for (let byte = 0; byte < 256; byte++) if (automaton.next(state, byte) !== DEAD) allowed.push(byte);
    const byte = allowed[Math.floor(random() * allowed.length)];
    bytes.push(byte);
    state = automaton.next(state, byte);
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
}
