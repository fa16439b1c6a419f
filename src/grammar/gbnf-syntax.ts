/**
 * GBNF, the grammar notation of llama.cpp's server (a form of EBNF):
 *
 *   root   ::= answer ("," answer)*      # the rule named root is the start
 *   answer ::= "yes" | "no" | [0-9]{1,3} | ( "(" answer ")" )?
 *
 * Quoted text, [classes] (ranges, ^ negation), `.` (any character), rule
 * names, grouping, `|`, and * + ? {m} {m,} {m,n}; `#` comments. Escapes in
 * text and classes: \n \r \t \\ \" \] \- \xHH \uHHHH \UHHHHHHHH. A rule ends
 * where the next `name ::=` starts, so a rule may span lines.
 */
import { TesseraError } from '../core/errors.js';
import { alt, chars, complementRanges, EMPTY, grammarOf, MAX_CODE_POINT, ref, repeat, seq, text, type CodeRange, type Grammar, type GrammarNode } from './grammar.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*/;
const ESCAPES: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09, '\\': 0x5c, '"': 0x22, ']': 0x5d, '[': 0x5b, '-': 0x2d, '/': 0x2f, "'": 0x27 };

export function parseGbnf(source: string): Grammar {
  return new GbnfParser(source).parse();
}

class GbnfParser {
  private at = 0;

  constructor(private readonly source: string) {}

  parse(): Grammar {
    const rules: [string, GrammarNode][] = [];
    const seen = new Set<string>();
    for (this.skipSpace(); this.at < this.source.length; this.skipSpace()) {
      const name = this.name();
      this.skipSpace();
      if (!this.source.startsWith('::=', this.at)) this.fail(`expected "::=" after the rule name "${name}"`);
      this.at += 3;
      if (seen.has(name)) this.fail(`the rule "${name}" is defined twice`);
      seen.add(name);
      rules.push([name, this.alternation()]);
    }
    if (!seen.has('root')) throw new TesseraError('TESSERA_ERR_GRAMMAR', 'the grammar has no rule named "root" (the start rule)');
    return grammarOf(rules, 'root');
  }

  private fail(message: string): never {
    const line = this.source.slice(0, this.at).split('\n').length;
    throw new TesseraError('TESSERA_ERR_GRAMMAR', `grammar line ${line}: ${message}`);
  }

  private skipSpace(): void {
    for (;;) {
      const char = this.source[this.at];
      if (char === '#') {
        const newline = this.source.indexOf('\n', this.at);
        this.at = newline < 0 ? this.source.length : newline + 1;
      } else if (char !== undefined && /\s/.test(char)) this.at++;
      else return;
    }
  }

  private name(): string {
    const match = NAME.exec(this.source.slice(this.at));
    if (!match) this.fail(`expected a rule name, found ${JSON.stringify(this.source.slice(this.at, this.at + 10))}`);
    this.at += match[0].length;
    return match[0];
  }

  /** True when a new rule (`name ::=`) starts here. */
  private atRuleStart(): boolean {
    const match = NAME.exec(this.source.slice(this.at));
    if (!match) return false;
    return /^\s*::=/.test(this.source.slice(this.at + match[0].length));
  }

  private alternation(): GrammarNode {
    const branches = [this.sequence()];
    while (this.source[this.at] === '|') {
      this.at++;
      branches.push(this.sequence());
    }
    return alt(...branches);
  }

  private sequence(): GrammarNode {
    const items: GrammarNode[] = [];
    for (this.skipSpace(); this.at < this.source.length; this.skipSpace()) {
      const char = this.source[this.at];
      if (char === '|' || char === ')' || this.atRuleStart()) break;
      items.push(this.quantified(this.atom()));
    }
    return items.length === 0 ? EMPTY : seq(...items);
  }

  private quantified(atom: GrammarNode): GrammarNode {
    let node = atom;
    for (;;) {
      const char = this.source[this.at];
      if (char === '*') node = repeat(node, 0, Infinity);
      else if (char === '+') node = repeat(node, 1, Infinity);
      else if (char === '?') node = repeat(node, 0, 1);
      else if (char === '{') {
        const match = /^\{\s*(\d+)\s*(,\s*(\d*)\s*)?\}/.exec(this.source.slice(this.at));
        if (!match) this.fail('expected {m}, {m,} or {m,n}');
        const min = Number(match[1]);
        const max = match[2] === undefined ? min : match[3] === '' ? Infinity : Number(match[3]);
        if (max < min) this.fail(`{${min},${max}} has max below min`);
        node = repeat(node, min, max);
        this.at += match[0].length - 1;
      } else return node;
      this.at++;
    }
  }

  private atom(): GrammarNode {
    const char = this.source[this.at];
    if (char === '"') return this.literal();
    if (char === '[') return this.charClass();
    if (char === '.') {
      this.at++;
      return chars([0, MAX_CODE_POINT]);
    }
    if (char === '(') {
      this.at++;
      const inner = this.alternation();
      this.skipSpace();
      if (this.source[this.at] !== ')') this.fail('missing ")"');
      this.at++;
      return inner;
    }
    return ref(this.name());
  }

  private literal(): GrammarNode {
    this.at++;
    let value = '';
    while (this.source[this.at] !== '"') {
      if (this.at >= this.source.length) this.fail('unterminated string');
      value += String.fromCodePoint(this.codePoint());
    }
    this.at++;
    return text(value);
  }

  private charClass(): GrammarNode {
    this.at++;
    const negated = this.source[this.at] === '^';
    if (negated) this.at++;
    const ranges: CodeRange[] = [];
    while (this.source[this.at] !== ']') {
      if (this.at >= this.source.length) this.fail('missing "]"');
      const low = this.codePoint();
      if (this.source[this.at] === '-' && this.source[this.at + 1] !== ']') {
        this.at++;
        const high = this.codePoint();
        if (high < low) this.fail('a range is out of order');
        ranges.push([low, high]);
      } else ranges.push([low, low]);
    }
    this.at++;
    return chars(...(negated ? complementRanges(ranges) : ranges));
  }

  /** One character of a literal or class, escapes decoded. */
  private codePoint(): number {
    const char = this.source.codePointAt(this.at)!;
    if (char !== 0x5c) {
      this.at += char > 0xffff ? 2 : 1;
      return char;
    }
    const kind = this.source[this.at + 1];
    this.at += 2;
    if (kind in ESCAPES) return ESCAPES[kind];
    const digits = kind === 'x' ? 2 : kind === 'u' ? 4 : kind === 'U' ? 8 : 0;
    if (digits === 0) this.fail(`unknown escape "\\${kind ?? ''}"`);
    const hex = this.source.slice(this.at, this.at + digits);
    if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(hex) || parseInt(hex, 16) > MAX_CODE_POINT) this.fail(`bad escape "\\${kind}${hex}"`);
    this.at += digits;
    return parseInt(hex, 16);
  }
}
