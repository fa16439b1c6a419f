/**
 * Regular expressions (the ECMAScript syntax JSON schema `pattern` uses, and
 * the `regex` response format) parsed into a GrammarNode. The whole output
 * must match, so ^ and $ are accepted only at the ends. Everything that is
 * not a regular language or needs lookaround (backreferences, \b,
 * lookahead) is refused with an error naming it.
 */
import { TesseraError } from '../core/errors.js';
import { alt, chars, complementRanges, EMPTY, MAX_CODE_POINT, normalizeRanges, repeat, seq, type CodeRange, type GrammarNode } from './grammar.js';

export interface ParsedRegex {
  node: GrammarNode;
  /** The pattern started with ^ (a JSON schema pattern without it may match anywhere in the string). */
  anchoredStart: boolean;
  anchoredEnd: boolean;
}

const DIGIT: CodeRange[] = [[0x30, 0x39]];
const WORD: CodeRange[] = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const SPACE: CodeRange[] = [[0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff]];
/** `.` without the s flag: anything but line terminators. */
export const DOT: CodeRange[] = complementRanges([[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]]);
const SIMPLE_ESCAPES: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09, f: 0x0c, v: 0x0b, '0': 0 };

export function parseRegex(pattern: string): ParsedRegex {
  return new RegexParser(pattern).parse();
}

class RegexParser {
  private readonly chars: string[];
  private at = 0;

  constructor(private readonly pattern: string) {
    this.chars = [...pattern];
  }

  parse(): ParsedRegex {
    const anchoredStart = this.peek() === '^';
    if (anchoredStart) this.at++;
    let end = this.chars.length;
    const anchoredEnd = end > this.at && this.chars[end - 1] === '$' && !this.escapedAt(end - 1);
    if (anchoredEnd) end--;
    const node = this.alternation(end);
    if (this.at < end) this.fail(`unexpected "${this.chars[this.at]}"`);
    return { node, anchoredStart, anchoredEnd };
  }

  /** True when the character at `index` is preceded by an odd number of backslashes. */
  private escapedAt(index: number): boolean {
    let slashes = 0;
    for (let i = index - 1; i >= 0 && this.chars[i] === '\\'; i--) slashes++;
    return slashes % 2 === 1;
  }

  private peek(): string | undefined {
    return this.chars[this.at];
  }

  private fail(message: string): never {
    throw new TesseraError('TESSERA_ERR_GRAMMAR', `regular expression ${JSON.stringify(this.pattern)} at ${this.at}: ${message}`);
  }

  private alternation(end: number): GrammarNode {
    const branches = [this.sequence(end)];
    while (this.at < end && this.peek() === '|') {
      this.at++;
      branches.push(this.sequence(end));
    }
    return alt(...branches);
  }

  private sequence(end: number): GrammarNode {
    const items: GrammarNode[] = [];
    while (this.at < end && this.peek() !== '|' && this.peek() !== ')') items.push(this.quantified(this.atom(end), end));
    return items.length === 0 ? EMPTY : seq(...items);
  }

  private quantified(atom: GrammarNode, end: number): GrammarNode {
    let node = atom;
    for (;;) {
      const next = this.peek();
      if (this.at >= end || next === undefined) return node;
      let bounds: [number, number] | undefined;
      if (next === '*') bounds = [0, Infinity];
      else if (next === '+') bounds = [1, Infinity];
      else if (next === '?') bounds = [0, 1];
      else if (next === '{') bounds = this.braces();
      if (!bounds) return node;
      if (next !== '{') this.at++;
      if (this.peek() === '?') this.at++; // lazy: same language
      node = repeat(node, bounds[0], bounds[1]);
    }
  }

  /** {n}, {n,}, {n,m}; a brace that does not open one is a literal (as in JavaScript without the u flag). */
  private braces(): [number, number] | undefined {
    const rest = this.chars.slice(this.at).join('');
    const match = /^\{(\d+)(,(\d*))?\}/.exec(rest);
    if (!match) return undefined;
    this.at += [...match[0]].length;
    const min = Number(match[1]);
    const max = match[2] === undefined ? min : match[3] === '' ? Infinity : Number(match[3]);
    if (max < min) this.fail(`{${min},${max}} has max below min`);
    return [min, max];
  }

  private atom(end: number): GrammarNode {
    const char = this.chars[this.at++];
    switch (char) {
      case '(':
        return this.group(end);
      case '[':
        return chars(...this.charClass());
      case '.':
        return chars(...DOT);
      case '\\':
        return chars(...this.escape(false));
      case '^':
      case '$':
        return this.fail(`anchors are supported only at the very start and end (the whole output must match)`);
      case '*':
      case '+':
      case '?':
        return this.fail(`"${char}" has nothing to repeat`);
      default:
        return chars([char.codePointAt(0)!, char.codePointAt(0)!]);
    }
  }

  private group(end: number): GrammarNode {
    if (this.peek() === '?') {
      const kind = this.chars.slice(this.at, this.at + 3).join('');
      if (kind.startsWith('?:')) this.at += 2;
      else if (kind.startsWith('?<') && kind !== '?<=' && kind !== '?<!') {
        const close = this.chars.indexOf('>', this.at);
        if (close < 0) this.fail('unterminated group name');
        this.at = close + 1;
      } else this.fail('lookaround assertions are not supported');
    }
    const inner = this.alternation(end);
    if (this.peek() !== ')') this.fail('missing ")"');
    this.at++;
    return inner;
  }

  private charClass(): CodeRange[] {
    const negated = this.peek() === '^';
    if (negated) this.at++;
    const ranges: CodeRange[] = [];
    while (this.peek() !== ']') {
      if (this.at >= this.chars.length) this.fail('missing "]"');
      const low = this.classAtom();
      if (this.peek() === '-' && this.chars[this.at + 1] !== ']' && this.at + 1 < this.chars.length && low.length === 1 && low[0][0] === low[0][1]) {
        this.at++;
        const high = this.classAtom();
        if (high.length !== 1 || high[0][0] !== high[0][1]) this.fail('a range must end with one character');
        if (high[0][0] < low[0][0]) this.fail('a range is out of order');
        ranges.push([low[0][0], high[0][0]]);
      } else ranges.push(...low);
    }
    this.at++;
    const normal = normalizeRanges(ranges);
    return negated ? complementRanges(normal) : normal;
  }

  private classAtom(): CodeRange[] {
    const char = this.chars[this.at++];
    if (char === '\\') return this.escape(true);
    const code = char.codePointAt(0)!;
    return [[code, code]];
  }

  /** After a backslash: a class (\d), a control character, a code point, or an escaped literal. */
  private escape(inClass: boolean): CodeRange[] {
    const char = this.chars[this.at++];
    if (char === undefined) this.fail('the pattern ends with a backslash');
    const single = (code: number): CodeRange[] => [[code, code]];
    switch (char) {
      case 'd':
        return DIGIT;
      case 'D':
        return complementRanges(DIGIT);
      case 'w':
        return WORD;
      case 'W':
        return complementRanges(WORD);
      case 's':
        return SPACE;
      case 'S':
        return complementRanges(SPACE);
      case 'x':
        return single(this.hex(2));
      case 'u':
        return single(this.unicodeEscape());
      case 'b':
        return inClass ? single(0x08) : this.fail('\\b (word boundary) is not supported');
      case 'B':
        return this.fail('\\B is not supported');
      case 'k':
        return this.fail('backreferences are not supported');
    }
    if (char in SIMPLE_ESCAPES) return single(SIMPLE_ESCAPES[char]);
    if (/[1-9]/.test(char)) this.fail('backreferences are not supported');
    return single(char.codePointAt(0)!);
  }

  private unicodeEscape(): number {
    if (this.peek() !== '{') return this.hex(4);
    const close = this.chars.indexOf('}', this.at);
    if (close < 0) this.fail('unterminated \\u{...}');
    const value = parseInt(this.chars.slice(this.at + 1, close).join(''), 16);
    if (!Number.isInteger(value) || value > MAX_CODE_POINT) this.fail('bad \\u{...} escape');
    this.at = close + 1;
    return value;
  }

  private hex(digits: number): number {
    const text = this.chars.slice(this.at, this.at + digits).join('');
    if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(text)) this.fail(`expected ${digits} hex digits`);
    this.at += digits;
    return parseInt(text, 16);
  }
}
