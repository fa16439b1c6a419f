/** Regular expressions, GBNF and the byte automaton they run on. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTesseraError } from '../core/errors.js';
import { accepts, automatonOf, randomSentence, seededRandom } from '../testing/grammar-walk.js';
import { utf8Sequences } from './utf8-sequences.js';

function table(constraint: Parameters<typeof automatonOf>[0], cases: [string, boolean][]): void {
  const automaton = automatonOf(constraint);
  for (const [text, expected] of cases) assert.equal(accepts(automaton, text), expected, `${JSON.stringify(text)} under ${JSON.stringify(constraint)}`);
}

function refused(constraint: Parameters<typeof automatonOf>[0], pattern: RegExp): void {
  assert.throws(() => automatonOf(constraint), (error: unknown) => isTesseraError(error) && error.code === 'TESSERA_ERR_GRAMMAR' && pattern.test(error.message));
}

test('regex: the whole output matches; classes, escapes, groups, alternation and quantifiers', () => {
  table({ type: 'regex', pattern: '^[a-c]+(x|yz){2,3}\\d?$' }, [['abxx', true], ['abxyzx', true], ['axx7', true], ['ab', false], ['axxxx', false], ['xabxx', false]]);
  table({ type: 'regex', pattern: '(?:\\w+\\s?)*\\.' }, [['hello world.', true], ['.', true], ['hi  there.', false]]);
  table({ type: 'regex', pattern: '[^a-z]{2}\\u00e9.' }, [['AB\u00e9!', true], ['😀😀\u00e9x', true], ['ab\u00e9x', false], ['AB\u00e9\n', false]]);
  table({ type: 'regex', pattern: '(?<year>\\d{4})-\\d\\d?|none' }, [['2024-1', true], ['2024-12', true], ['none', true], ['2024-123', false]]);
  table({ type: 'regex', pattern: 'a{2,}b{,3}' }, [['aaaa' + 'b{,3}', true], ['aab{,3}', true], ['ab{,3}', false]]);
});

test('regex: what is not a regular language is refused with a coded error', () => {
  refused({ type: 'regex', pattern: '(a)\\1' }, /backreference/);
  refused({ type: 'regex', pattern: 'a(?=b)' }, /lookaround/);
  refused({ type: 'regex', pattern: '\\bword' }, /word boundary/);
  refused({ type: 'regex', pattern: 'a^b' }, /anchors/);
  refused({ type: 'regex', pattern: '(ab' }, /missing "\)"/);
});

test('GBNF: rules across lines, comments, escapes, classes, repetition and recursion', () => {
  const grammar = [
    'root   ::= answer ("," answer)*   # comma-separated',
    'answer ::= "yes" | "no" | [0-9]{1,3}',
    '         | "(" answer ")"',
    'quoted ::= "\\"" [^"\\n]* "\\""',
  ].join('\n');
  table({ type: 'grammar', grammar }, [['yes,no', true], ['(12),((no))', true], ['1234', false], ['', false], ['yes,', false]]);
  table({ type: 'grammar', grammar: 'root ::= item+\nitem ::= [a-z] | "\\x41" | "\\u00e9" | .' }, [['abc', true], ['Aé😀', true], ['', false]]);
});

test('GBNF: left recursion, undefined rules and a missing root are refused', () => {
  refused({ type: 'grammar', grammar: 'root ::= root "a" | "a"' }, /left-recursive/);
  refused({ type: 'grammar', grammar: 'root ::= x\nx ::= y? x "b" | "c"\ny ::= "d"' }, /left-recursive/);
  refused({ type: 'grammar', grammar: 'root ::= missing' }, /undefined rule "missing"/);
  refused({ type: 'grammar', grammar: 'start ::= "a"' }, /no rule named "root"/);
  refused({ type: 'grammar', grammar: 'root ::= "a" root' }, /matches no text/);
});

test('random walks through a grammar give sentences that match the same pattern in JavaScript', () => {
  const pattern = '[A-Z][a-z]{0,5}( [0-9]{1,3}(\\.[0-9]+)?)?(, [a-z]+){0,2}[.!?]';
  const automaton = automatonOf({ type: 'regex', pattern });
  const random = seededRandom(7);
  const check = new RegExp(`^(?:${pattern})$`, 'u');
  for (let i = 0; i < 200; i++) {
    const sentence = randomSentence(automaton, random);
    assert.match(sentence, check);
  }
});

test('UTF-8 byte sequences of a code-point range match exactly the encodings of its code points', () => {
  const random = seededRandom(3);
  const encoder = new TextEncoder();
  for (let round = 0; round < 40; round++) {
    const a = Math.floor(random() ** 3 * 0x10ffff);
    const b = Math.min(0x10ffff, a + Math.floor(random() ** 2 * 0x20000));
    const sequences = utf8Sequences(a, b);
    const matches = (bytes: Uint8Array): boolean => sequences.some((sequence) => sequence.length === bytes.length && sequence.every(([low, high], i) => bytes[i] >= low && bytes[i] <= high));
    for (let k = 0; k < 50; k++) {
      const code = Math.floor(a + random() * (b - a + 1)) + (k % 2 === 0 ? 0 : Math.floor(random() * 200) - 100);
      if (code < 0 || code > 0x10ffff) continue;
      const inRange = code >= a && code <= b && !(code >= 0xd800 && code <= 0xdfff);
      if (code >= 0xd800 && code <= 0xdfff) continue;
      assert.equal(matches(encoder.encode(String.fromCodePoint(code))), inRange, `U+${code.toString(16)} in [${a.toString(16)}, ${b.toString(16)}]`);
    }
  }
});
