/**
 * Runs a lowered grammar over bytes as a pushdown automaton made
 * deterministic: a state is the set of parse stacks still alive (each stack
 * a list of grammar positions, its top always a terminal), so ambiguity
 * costs nothing but a larger set. States and stacks are interned, and each
 * (state, byte class) transition is computed once and then read from a
 * table, so after warm-up a step is one array read, as in a DFA; the token
 * trie walk (token-mask.ts) relies on that.
 *
 * A state id is a name for its set of stacks, which is a function of the
 * bytes read so far alone, whatever order states were interned in: so
 * replaying a sequence's delivered bytes always lands on the same set, and
 * masks (functions of the set) never depend on other requests.
 */
import { TesseraError } from '../core/errors.js';
import { END, REF, TERM, type FlatGrammar } from './grammar-lowering.js';

export const DEAD = -1;
const UNKNOWN = -2;
/** Enough for any schema we have seen; a runaway grammar fails its request instead of eating memory. */
export const MAX_STATES = 1 << 18;
const EMPTY_STACK = 0;

export class GrammarAutomaton {
  /** [256] byte → class; bytes no terminal tells apart share a class. */
  readonly byteClass: Uint8Array;
  readonly classCount: number;
  readonly start: number;
  private readonly classByte: Uint8Array;
  /** [capacity × classCount] next state, DEAD, or UNKNOWN. */
  private table = new Int32Array(0);
  private readonly stateStacks: Int32Array[] = [];
  private readonly stateIds = new Map<string, number>();
  private stackTop = new Int32Array(1024);
  private stackParent = new Int32Array(1024);
  private stackCount = 1;
  private readonly stackIds = new Map<number, number>();

  constructor(private readonly grammar: FlatGrammar) {
    const { byteClass, classByte } = byteClasses(grammar.terminals);
    this.byteClass = byteClass;
    this.classByte = classByte;
    this.classCount = classByte.length;
    const initial = new Set<number>();
    this.expandRule(grammar.root, EMPTY_STACK, initial);
    this.start = this.intern(initial);
    if (this.start === DEAD) throw new TesseraError('TESSERA_ERR_GRAMMAR', 'the grammar matches no text');
  }

  get stateCount(): number {
    return this.stateStacks.length;
  }

  /** The state after reading `byte` in `state`, or DEAD. */
  next(state: number, byte: number): number {
    const cls = this.byteClass[byte];
    const known = this.table[state * this.classCount + cls];
    return known === UNKNOWN ? this.compute(state, cls) : known;
  }

  /** The state after reading all of `bytes`, or DEAD. */
  nextAll(state: number, bytes: Uint8Array): number {
    let current = state;
    for (let i = 0; i < bytes.length && current !== DEAD; i++) current = this.next(current, bytes[i]);
    return current;
  }

  /** The text read so far is a complete sentence of the grammar. */
  isAccepting(state: number): boolean {
    return this.stateStacks[state][0] === EMPTY_STACK;
  }

  /** Accepting, and no byte can follow. */
  isFinished(state: number): boolean {
    const stacks = this.stateStacks[state];
    return stacks.length === 1 && stacks[0] === EMPTY_STACK;
  }

  private compute(state: number, cls: number): number {
    const byte = this.classByte[cls];
    const out = new Set<number>();
    const { kinds, values, terminals } = this.grammar;
    for (const stack of this.stateStacks[state]) {
      if (stack === EMPTY_STACK) continue;
      const position = this.stackTop[stack];
      if (terminals[values[position]][byte] === 0) continue;
      const parent = this.stackParent[stack];
      this.advance(kinds[position + 1] === END ? parent : this.push(parent, position + 1), out);
    }
    const next = this.intern(out);
    this.table[state * this.classCount + cls] = next;
    return next;
  }

  /** Expands `stack` until its top is a terminal (or it is empty), adding each result to `out`. */
  private advance(stack: number, out: Set<number>): void {
    if (stack === EMPTY_STACK) {
      out.add(stack);
      return;
    }
    const position = this.stackTop[stack];
    const kind = this.grammar.kinds[position];
    if (kind === TERM) {
      out.add(stack);
      return;
    }
    if (kind !== REF) throw new TesseraError('TESSERA_ERR_INTERNAL', 'a parse stack points past the end of an alternative');
    const parent = this.stackParent[stack];
    // A reference in tail position leaves nothing to return to: no frame, so x* runs in constant space.
    const rest = this.grammar.kinds[position + 1] === END ? parent : this.push(parent, position + 1);
    this.expandRule(this.grammar.values[position], rest, out);
  }

  private expandRule(rule: number, rest: number, out: Set<number>): void {
    for (const start of this.grammar.alternatives[rule]) {
      this.advance(this.grammar.kinds[start] === END ? rest : this.push(rest, start), out);
    }
  }

  private push(parent: number, position: number): number {
    const key = parent * this.grammar.kinds.length + position;
    let id = this.stackIds.get(key);
    if (id === undefined) {
      if (this.stackCount === this.stackTop.length) this.growStacks();
      id = this.stackCount++;
      this.stackTop[id] = position;
      this.stackParent[id] = parent;
      this.stackIds.set(key, id);
    }
    return id;
  }

  private intern(stacks: Set<number>): number {
    if (stacks.size === 0) return DEAD;
    const sorted = Int32Array.from(stacks).sort();
    const key = sorted.join(',');
    let id = this.stateIds.get(key);
    if (id !== undefined) return id;
    id = this.stateStacks.length;
    if (id >= MAX_STATES) {
      throw new TesseraError('TESSERA_ERR_GRAMMAR', `the constraint needs more than ${MAX_STATES} automaton states; simplify the schema or grammar (bound repetitions, fewer nested optional parts)`);
    }
    this.stateStacks.push(sorted);
    this.stateIds.set(key, id);
    this.ensureRows(id + 1);
    return id;
  }

  private ensureRows(rows: number): void {
    const needed = rows * this.classCount;
    if (needed <= this.table.length) return;
    const grown = new Int32Array(Math.max(needed, this.table.length * 2, 64 * this.classCount)).fill(UNKNOWN);
    grown.set(this.table);
    this.table = grown;
  }

  private growStacks(): void {
    const top = new Int32Array(this.stackTop.length * 2);
    top.set(this.stackTop);
    const parent = new Int32Array(this.stackParent.length * 2);
    parent.set(this.stackParent);
    this.stackTop = top;
    this.stackParent = parent;
  }
}

/** Groups bytes that every terminal treats alike. */
function byteClasses(terminals: readonly Uint8Array[]): { byteClass: Uint8Array; classByte: Uint8Array } {
  const byteClass = new Uint8Array(256);
  const representatives: number[] = [];
  const bySignature = new Map<string, number>();
  for (let byte = 0; byte < 256; byte++) {
    let signature = '';
    for (const set of terminals) signature += set[byte];
    let cls = bySignature.get(signature);
    if (cls === undefined) {
      cls = representatives.length;
      bySignature.set(signature, cls);
      representatives.push(byte);
    }
    byteClass[byte] = cls;
  }
  return { byteClass, classByte: Uint8Array.from(representatives) };
}
