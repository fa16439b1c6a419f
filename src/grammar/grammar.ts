/**
 * The one grammar form every constraint compiles to (JSON schema, JSON
 * object, regular expression, GBNF): named rules whose bodies are trees of
 * text, code-point classes, sequences, alternatives, bounded or unbounded
 * repetition and references to other rules. Plain data: the lowering step
 * (grammar-lowering.ts) turns it into the flat form the automaton runs.
 */
import { TesseraError } from '../core/errors.js';

/** Inclusive code-point range [first, last]. */
export type CodeRange = readonly [number, number];

export type GrammarNode =
  /** One code point from the ranges, written as UTF-8. */
  | { readonly kind: 'chars'; readonly ranges: readonly CodeRange[] }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'seq'; readonly items: readonly GrammarNode[] }
  | { readonly kind: 'alt'; readonly items: readonly GrammarNode[] }
  /** item repeated min..max times (max may be Infinity). */
  | { readonly kind: 'repeat'; readonly item: GrammarNode; readonly min: number; readonly max: number }
  | { readonly kind: 'ref'; readonly name: string };

export interface Grammar {
  readonly rules: ReadonlyMap<string, GrammarNode>;
  readonly root: string;
}

export const MAX_CODE_POINT = 0x10ffff;
/** Repetition counts above this are refused: each count is a rule of its own. */
export const MAX_REPEAT = 10_000;

export function text(value: string): GrammarNode {
  return { kind: 'text', text: value };
}

export function chars(...ranges: CodeRange[]): GrammarNode {
  return { kind: 'chars', ranges };
}

export function seq(...items: GrammarNode[]): GrammarNode {
  return items.length === 1 ? items[0] : { kind: 'seq', items };
}

export function alt(...items: GrammarNode[]): GrammarNode {
  return items.length === 1 ? items[0] : { kind: 'alt', items };
}

export function repeat(item: GrammarNode, min: number, max: number): GrammarNode {
  if (!Number.isInteger(min) || min < 0 || !(max === Infinity || (Number.isInteger(max) && max >= min))) {
    throw new TesseraError('TESSERA_ERR_GRAMMAR', `a repetition must have 0 ≤ min ≤ max; got {${min},${max}}`);
  }
  if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) {
    throw new TesseraError('TESSERA_ERR_GRAMMAR', `repetition counts above ${MAX_REPEAT} are not supported; got {${min},${max}}`);
  }
  return { kind: 'repeat', item, min, max };
}

export function optional(item: GrammarNode): GrammarNode {
  return repeat(item, 0, 1);
}

export function ref(name: string): GrammarNode {
  return { kind: 'ref', name };
}

/** The empty string. */
export const EMPTY: GrammarNode = { kind: 'seq', items: [] };

/** Ranges sorted, merged, clipped to [0, max]. */
export function normalizeRanges(ranges: readonly CodeRange[], max = MAX_CODE_POINT): CodeRange[] {
  const sorted = ranges.map(([a, b]): [number, number] => [Math.max(0, a), Math.min(max, b)]).filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = merged[merged.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return merged;
}

/** Every code point not in `ranges`. */
export function complementRanges(ranges: readonly CodeRange[], max = MAX_CODE_POINT): CodeRange[] {
  const out: CodeRange[] = [];
  let next = 0;
  for (const [a, b] of normalizeRanges(ranges, max)) {
    if (a > next) out.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= max) out.push([next, max]);
  return out;
}

/** A grammar from rules given in order; the first is the root unless `root` says otherwise. */
export function grammarOf(rules: Iterable<[string, GrammarNode]>, root?: string): Grammar {
  const map = new Map(rules);
  const first = map.keys().next();
  const rootName = root ?? (first.done ? undefined : first.value);
  if (rootName === undefined || !map.has(rootName)) throw new TesseraError('TESSERA_ERR_GRAMMAR', `the grammar has no rule "${root ?? 'root'}"`);
  return { rules: map, root: rootName };
}
