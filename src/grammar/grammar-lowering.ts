/**
 * Lowers a Grammar to the flat form the automaton runs: every rule a list
 * of alternatives, every alternative a run of elements (a byte-set terminal
 * or a rule reference) closed by END. Code-point classes become rules of
 * UTF-8 byte sequences; repetition becomes right-recursive rules (tail
 * references cost no stack, so x* runs in constant space). Alternatives that
 * can never finish are dropped, so every prefix the automaton accepts can
 * be completed, and left recursion (which a top-down automaton cannot run)
 * is refused.
 */
import { TesseraError } from '../core/errors.js';
import { normalizeRanges, type CodeRange, type Grammar, type GrammarNode } from './grammar.js';
import { utf8Sequences } from './utf8-sequences.js';

export const TERM = 0;
export const REF = 1;
export const END = 2;

export interface FlatGrammar {
  /** [elements] TERM, REF or END. */
  readonly kinds: Uint8Array;
  /** [elements] TERM: terminal index; REF: rule index; END: -1. */
  readonly values: Int32Array;
  /** Per rule: the element index where each alternative starts. */
  readonly alternatives: readonly Int32Array[];
  /** Per terminal: [256] 1 where the byte matches. */
  readonly terminals: readonly Uint8Array[];
  readonly root: number;
  readonly ruleNames: readonly string[];
}

/** A lowered symbol: terminal t is 2t, rule r is 2r + 1. */
type Symbol = number;
type Alternatives = Symbol[][];

const isRule = (symbol: Symbol): boolean => (symbol & 1) === 1;
const indexOf = (symbol: Symbol): number => symbol >> 1;

class Lowering {
  readonly rules: Alternatives[] = [];
  readonly names: string[] = [];
  private readonly named = new Map<string, number>();
  private readonly aux = new Map<string, number>();
  private readonly alternations = new WeakMap<GrammarNode, Symbol>();
  readonly terminals: Uint8Array[] = [];
  private readonly terminalKeys = new Map<string, number>();

  constructor(private readonly grammar: Grammar) {
    for (const name of grammar.rules.keys()) this.named.set(name, this.newRule(name));
  }

  lower(): void {
    for (const [name, node] of this.grammar.rules) this.rules[this.named.get(name)!] = this.alternatives(node);
  }

  get root(): number {
    return this.named.get(this.grammar.root)!;
  }

  private newRule(name: string): number {
    this.rules.push([]);
    this.names.push(name);
    return this.rules.length - 1;
  }

  private alternatives(node: GrammarNode): Alternatives {
    if (node.kind === 'alt') return node.items.flatMap((item) => this.alternatives(item));
    return [this.sequence(node)];
  }

  private sequence(node: GrammarNode): Symbol[] {
    switch (node.kind) {
      case 'text':
        return [...new TextEncoder().encode(node.text)].map((byte) => this.terminal([[byte, byte]]));
      case 'chars':
        return [this.charClass(node.ranges)];
      case 'seq':
        return node.items.flatMap((item) => this.sequence(item));
      case 'alt':
        return node.items.length === 1 ? this.sequence(node.items[0]) : [this.alternationRule(node)];
      case 'repeat':
        return this.repetition(node.item, node.min, node.max);
      case 'ref': {
        const rule = this.named.get(node.name);
        if (rule === undefined) throw new TesseraError('TESSERA_ERR_GRAMMAR', `the grammar refers to an undefined rule "${node.name}"`);
        return [2 * rule + 1];
      }
    }
  }

  /** min copies of the item, then up to max − min optional ones (or a star). */
  private repetition(itemNode: GrammarNode, min: number, max: number): Symbol[] {
    const item = this.sequence(itemNode);
    const out: Symbol[] = [];
    for (let i = 0; i < min; i++) out.push(...item);
    if (max === Infinity) {
      out.push(this.recursiveRule(`star:${item.join(',')}`, (self) => [[...item, self], []]));
    } else {
      let tail: Symbol | undefined;
      for (let count = 1; count <= max - min; count++) {
        const inner = tail;
        tail = this.recursiveRule(`opt:${item.join(',')}:${count}`, () => [inner === undefined ? [...item] : [...item, inner], []]);
      }
      if (tail !== undefined) out.push(tail);
    }
    return out;
  }

  private charClass(ranges: readonly CodeRange[]): Symbol {
    const normal = normalizeRanges(ranges);
    const ascii = normalizeRanges(normal.map(([a, b]): CodeRange => [a, Math.min(b, 0x7f)]));
    if (normal.every(([, b]) => b <= 0x7f)) return this.terminal(ascii);
    return this.auxRule(`chars:${JSON.stringify(normal)}`, () => {
      const alternatives: Alternatives = ascii.length > 0 ? [[this.terminal(ascii)]] : [];
      for (const [a, b] of normal) {
        if (b <= 0x7f) continue;
        for (const bytes of utf8Sequences(Math.max(a, 0x80), b)) alternatives.push(bytes.map((range) => this.terminal([range])));
      }
      return alternatives;
    });
  }

  private auxRule(key: string, body: () => Alternatives): Symbol {
    return this.recursiveRule(key, () => body());
  }

  /** One rule per alternation node (compilers share nodes such as whitespace, so identity is the key). */
  private alternationRule(node: GrammarNode): Symbol {
    const known = this.alternations.get(node);
    if (known !== undefined) return known;
    const rule = this.newRule('<alt>');
    this.alternations.set(node, 2 * rule + 1);
    this.rules[rule] = this.alternatives(node);
    return 2 * rule + 1;
  }

  /** A rule made once per key; `body` gets the rule's own symbol (for x*). */
  private recursiveRule(key: string, body: (self: Symbol) => Alternatives): Symbol {
    const known = this.aux.get(key);
    if (known !== undefined) return 2 * known + 1;
    const rule = this.newRule(`<${key.slice(0, 40)}>`);
    this.aux.set(key, rule);
    this.rules[rule] = body(2 * rule + 1);
    return 2 * rule + 1;
  }

  private terminal(ranges: readonly CodeRange[]): Symbol {
    const normal = normalizeRanges(ranges, 0xff);
    const key = JSON.stringify(normal);
    let index = this.terminalKeys.get(key);
    if (index === undefined) {
      const set = new Uint8Array(256);
      for (const [a, b] of normal) set.fill(1, a, b + 1);
      index = this.terminals.length;
      this.terminals.push(set);
      this.terminalKeys.set(key, index);
    }
    return 2 * index;
  }
}

export function lowerGrammar(grammar: Grammar): FlatGrammar {
  const lowering = new Lowering(grammar);
  lowering.lower();
  const rules = pruneUnproductive(lowering.rules, lowering.terminals, lowering.names, lowering.root);
  checkLeftRecursion(rules, lowering.names);
  return flatten(rules, lowering.terminals, lowering.root, lowering.names);
}

/** Drops alternatives that can never finish (they name a rule with no finite text). */
function pruneUnproductive(rules: Alternatives[], terminals: Uint8Array[], names: string[], root: number): Alternatives[] {
  const emptyTerminal = terminals.map((set) => !set.includes(1));
  const productive = new Array<boolean>(rules.length).fill(false);
  const altProductive = (alternative: Symbol[]): boolean => alternative.every((symbol) => (isRule(symbol) ? productive[indexOf(symbol)] : !emptyTerminal[indexOf(symbol)]));
  for (let changed = true; changed; ) {
    changed = false;
    rules.forEach((alternatives, rule) => {
      if (!productive[rule] && alternatives.some(altProductive)) changed = productive[rule] = true;
    });
  }
  if (!productive[root]) throw new TesseraError('TESSERA_ERR_GRAMMAR', `the grammar matches no text: rule "${names[root]}" can never finish`);
  return rules.map((alternatives) => alternatives.filter(altProductive));
}

function nullableRules(rules: Alternatives[]): boolean[] {
  const nullable = new Array<boolean>(rules.length).fill(false);
  for (let changed = true; changed; ) {
    changed = false;
    rules.forEach((alternatives, rule) => {
      if (nullable[rule]) return;
      if (alternatives.some((alternative) => alternative.every((symbol) => isRule(symbol) && nullable[indexOf(symbol)]))) changed = nullable[rule] = true;
    });
  }
  return nullable;
}

/** A rule that can reach itself without reading a byte would expand forever. */
function checkLeftRecursion(rules: Alternatives[], names: string[]): void {
  const nullable = nullableRules(rules);
  const leftCorners = rules.map((alternatives) => {
    const corners = new Set<number>();
    for (const alternative of alternatives) {
      for (const symbol of alternative) {
        if (!isRule(symbol)) break;
        corners.add(indexOf(symbol));
        if (!nullable[indexOf(symbol)]) break;
      }
    }
    return corners;
  });
  const state = new Uint8Array(rules.length); // 0 unseen, 1 on the path, 2 done
  const visit = (rule: number, path: number[]): void => {
    if (state[rule] === 2) return;
    if (state[rule] === 1) {
      const cycle = [...path.slice(path.indexOf(rule)), rule].map((index) => names[index]).join(' → ');
      throw new TesseraError('TESSERA_ERR_GRAMMAR', `the grammar is left-recursive (${cycle}); rewrite the rule with repetition, e.g. list ::= item ("," item)*`);
    }
    state[rule] = 1;
    for (const next of leftCorners[rule]) visit(next, [...path, rule]);
    state[rule] = 2;
  };
  rules.forEach((_, rule) => visit(rule, []));
}

function flatten(rules: Alternatives[], terminals: Uint8Array[], root: number, names: string[]): FlatGrammar {
  const kinds: number[] = [];
  const values: number[] = [];
  const alternatives = rules.map((ruleAlternatives) =>
    Int32Array.from(ruleAlternatives, (alternative) => {
      const start = kinds.length;
      for (const symbol of alternative) {
        kinds.push(isRule(symbol) ? REF : TERM);
        values.push(indexOf(symbol));
      }
      kinds.push(END);
      values.push(-1);
      return start;
    }),
  );
  return { kinds: Uint8Array.from(kinds), values: Int32Array.from(values), alternatives, terminals, root, ruleNames: names };
}
