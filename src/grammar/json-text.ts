/**
 * The pieces of JSON text as grammar: whitespace, strings (with length
 * bounds, or a pattern over the decoded value), numbers, literals, and the
 * rules of any JSON value (json_object mode). Repetition a model could run
 * away with is bounded as llama.cpp's schema converter bounds it: at most
 * one space or a newline and 20 indent characters between tokens, 16 digits
 * in an integer part or a fraction, 3 in an exponent.
 */
import { alt, chars, complementRanges, optional, ref, repeat, seq, text, type CodeRange, type GrammarNode } from './grammar.js';

export const WS = ref('json-ws');
const HEX = chars([0x30, 0x39], [0x41, 0x46], [0x61, 0x66]);
const DIGIT = chars([0x30, 0x39]);
/** Characters a JSON string must escape: the quote, the backslash, controls. */
const MUST_ESCAPE: CodeRange[] = [[0x00, 0x1f], [0x22, 0x22], [0x5c, 0x5c]];
const SHORT_ESCAPES: Record<number, string> = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' };

/** Up to one space, or a newline and up to 20 spaces or tabs. */
export function whitespace(): GrammarNode {
  return optional(alt(text(' '), seq(text('\n'), repeat(chars([0x20, 0x20], [0x09, 0x09]), 0, 20))));
}

/**
 * One character of a string: itself, or an escape. \u escapes of surrogates
 * are left out so every escape is one whole code point (length bounds count
 * code points, as validators do).
 */
export function stringChar(): GrammarNode {
  const nonSurrogateHex = alt(seq(chars([0x30, 0x39], [0x41, 0x43], [0x45, 0x46], [0x61, 0x63], [0x65, 0x66]), HEX, HEX, HEX), seq(chars([0x44, 0x44], [0x64, 0x64]), chars([0x30, 0x37]), HEX, HEX));
  const escape = seq(text('\\'), alt(chars([0x22, 0x22], [0x5c, 0x5c], [0x2f, 0x2f], [0x62, 0x62], [0x66, 0x66], [0x6e, 0x6e], [0x72, 0x72], [0x74, 0x74]), seq(text('u'), nonSurrogateHex)));
  return alt(chars(...complementRanges(MUST_ESCAPE)), escape);
}

export function jsonString(minLength = 0, maxLength = Infinity): GrammarNode {
  return seq(text('"'), repeat(ref('json-char'), minLength, maxLength), text('"'));
}

/**
 * A grammar over string values (a pattern) as a grammar over their JSON
 * encodings: each character class loses the characters JSON must escape and
 * gains their escapes.
 */
export function jsonEncoded(node: GrammarNode): GrammarNode {
  switch (node.kind) {
    case 'chars':
      return encodedClass(node.ranges);
    case 'text':
      return seq(...[...node.text].map((char) => encodedClass([[char.codePointAt(0)!, char.codePointAt(0)!]])));
    case 'seq':
      return { kind: 'seq', items: node.items.map(jsonEncoded) };
    case 'alt':
      return { kind: 'alt', items: node.items.map(jsonEncoded) };
    case 'repeat':
      return { ...node, item: jsonEncoded(node.item) };
    case 'ref':
      return node;
  }
}

function encodedClass(ranges: readonly CodeRange[]): GrammarNode {
  const plain = complementRanges([...complementRanges(ranges), ...MUST_ESCAPE]);
  const escapes: GrammarNode[] = [];
  for (const [first, last] of MUST_ESCAPE) {
    for (let code = first; code <= last; code++) {
      if (!ranges.some(([a, b]) => code >= a && code <= b)) continue;
      escapes.push(text(SHORT_ESCAPES[code] ?? `\\u${code.toString(16).padStart(4, '0')}`));
    }
  }
  return alt(...(plain.length > 0 ? [chars(...plain)] : []), ...escapes);
}

/** Any JSON number: an integer part of up to 16 digits, up to 16 fraction digits, an exponent of up to 3. */
export function jsonNumber(): GrammarNode {
  return seq(jsonInteger(), optional(seq(text('.'), repeat(DIGIT, 1, 16))), optional(seq(chars([0x45, 0x45], [0x65, 0x65]), optional(chars([0x2b, 0x2b], [0x2d, 0x2d])), repeat(DIGIT, 1, 3))));
}

export function jsonInteger(): GrammarNode {
  return seq(optional(text('-')), alt(text('0'), seq(chars([0x31, 0x39]), repeat(DIGIT, 0, 15))));
}

/** The exact compact JSON text of a value (enum and const). */
export function literalJson(value: unknown): GrammarNode {
  return text(JSON.stringify(value));
}

/** Shared rules every JSON grammar includes: whitespace and string characters. */
export function jsonBaseRules(): [string, GrammarNode][] {
  return [
    ['json-ws', whitespace()],
    ['json-char', stringChar()],
  ];
}

/** Rules of any JSON value; `json-value` is the entry, `json-object` the object. */
export function jsonValueRules(): [string, GrammarNode][] {
  const value = ref('json-value');
  const member = seq(jsonString(), WS, text(':'), WS, value);
  const separator = seq(WS, text(','), WS);
  return [
    ...jsonBaseRules(),
    ['json-value', alt(ref('json-object'), ref('json-array'), jsonString(), jsonNumber(), text('true'), text('false'), text('null'))],
    ['json-object', seq(text('{'), WS, optional(seq(member, repeat(seq(separator, member), 0, Infinity), WS)), text('}'))],
    ['json-array', seq(text('['), WS, optional(seq(value, repeat(seq(separator, value), 0, Infinity), WS)), text(']'))],
  ];
}

