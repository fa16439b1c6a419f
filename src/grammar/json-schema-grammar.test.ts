/** JSON schemas and json_object as grammars: what they accept always validates. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTesseraError } from '../core/errors.js';
import { accepts, automatonOf, randomSentence, seededRandom } from '../testing/grammar-walk.js';
import { checkJsonSchema } from '../testing/json-schema-check.js';
import { sampleSchemas } from '../testing/sample-schemas.js';

test('json_object accepts JSON objects with bounded whitespace and nothing else', () => {
  const automaton = automatonOf({ type: 'json_object' });
  const good = ['{}', '{"a": 1, "b": [1, 2.5e-3, {"c": null}], "d": "é😀\\u00e9\\n"}', '{\n  "x": true\n}', '{"nested": {"deep": [[[]]]}}'];
  const bad = ['[1]', '{"a":}', '{"a": 1,}', '{"x": "\\ud800"}', '{"x": "\u0001"}', ' {}', '{}\n', '{"a": 01}'];
  for (const text of good) assert.ok(accepts(automaton, text), text);
  for (const text of bad) assert.ok(!accepts(automaton, text), text);
  const random = seededRandom(11);
  for (let i = 0; i < 100; i++) {
    const text = randomSentence(automaton, random, 0.5, 300);
    assert.equal(typeof JSON.parse(text), 'object', text);
  }
});

test('every random sentence of fifty assorted schemas parses and validates', () => {
  const random = seededRandom(5);
  sampleSchemas().forEach((schema, index) => {
    const automaton = automatonOf({ type: 'json_schema', schema });
    for (let i = 0; i < 20; i++) {
      const text = randomSentence(automaton, random);
      const errors = checkJsonSchema(JSON.parse(text), schema);
      assert.deepEqual(errors, [], `schema ${index} ${JSON.stringify(schema)}\n${text}`);
    }
  });
});

test('a recursive schema ($ref to itself) accepts trees of any depth', () => {
  const schema = { $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' } } }, required: ['v'] } }, $ref: '#/$defs/node' };
  const automaton = automatonOf({ type: 'json_schema', schema });
  assert.ok(accepts(automaton, '{"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": [{"v": 4, "kids": []}]}]}'));
  assert.ok(!accepts(automaton, '{"kids": []}'));
  assert.ok(!accepts(automaton, '{"v": 1, "kids": [{"v": "x"}]}'));
});

test('integer bounds: exactly the integers in range are accepted', () => {
  const cases = [{ minimum: -50, maximum: 50 }, { minimum: 7, maximum: 1234 }, { exclusiveMinimum: -3, exclusiveMaximum: 99 }, { minimum: 0.5, maximum: 10.5 }, { maximum: -20 }];
  for (const bounds of cases) {
    const automaton = automatonOf({ type: 'json_schema', schema: { type: 'integer', ...bounds } });
    for (let value = -1300; value <= 1300; value++) {
      const inRange = checkJsonSchema(value, bounds).length === 0;
      assert.equal(accepts(automaton, String(value)), inRange, `${value} with ${JSON.stringify(bounds)}`);
    }
    assert.ok(!accepts(automaton, '007'));
  }
});

test('number bounds: every accepted decimal is in range, and every in-range one on the 6-digit grid is accepted', () => {
  const random = seededRandom(9);
  const cases = [{ minimum: 0, maximum: 1 }, { exclusiveMinimum: -1.5, maximum: 2.25 }, { minimum: 0.1, exclusiveMaximum: 0.30000000000000004 }, { minimum: -0.001, exclusiveMaximum: 0.002 }, { minimum: 10 }, { exclusiveMaximum: -3.25 }];
  for (const bounds of cases) {
    const automaton = automatonOf({ type: 'json_schema', schema: { type: 'number', ...bounds } });
    for (let i = 0; i < 3000; i++) {
      const magnitude = random() < 0.5 ? random() * 4 : random() * 30;
      const digits = Math.floor(random() * 7);
      const text = `${random() < 0.4 ? '-' : ''}${magnitude.toFixed(digits)}`;
      if (text === '-0' || /^-0\.0*$/.test(text)) continue;
      const inRange = checkJsonSchema(Number(text), bounds).length === 0;
      assert.equal(accepts(automaton, text), inRange, `${text} with ${JSON.stringify(bounds)}`);
    }
    for (let i = 0; i < 50; i++) assert.deepEqual(checkJsonSchema(Number(randomSentence(automaton, random)), bounds), []);
  }
});

test('keywords the grammar cannot enforce are refused with their path, annotations are read past', () => {
  const refusal = (schema: unknown, pattern: RegExp): void =>
    assert.throws(() => automatonOf({ type: 'json_schema', schema }), (error: unknown) => isTesseraError(error) && error.code === 'TESSERA_ERR_GRAMMAR' && pattern.test(error.message));
  refusal({ type: 'object', properties: { n: { type: 'integer', multipleOf: 3 } } }, /#\/properties\/n\/multipleOf.*not supported/);
  refusal({ type: 'array', uniqueItems: true }, /uniqueItems/);
  refusal({ type: 'string', format: 'hostname' }, /format "hostname" is not supported/);
  refusal({ type: 'object', properties: { a: { type: 'string' } }, required: ['b'] }, /"b" is required but not among the properties/);
  refusal({ type: 'integer', minimum: 5, maximum: 4 }, /no number/);
  refusal({ $ref: 'https://example.com/schema' }, /only local references/);
  const annotated = automatonOf({ type: 'json_schema', schema: { title: 'T', description: 'D', $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'boolean', default: true, examples: [true] } });
  assert.ok(accepts(annotated, 'true'));
});

test('string patterns apply to the decoded value: characters JSON must escape come out escaped', () => {
  const automaton = automatonOf({ type: 'json_schema', schema: { type: 'string', pattern: '^a"b\\\\c\\nd$' } });
  assert.ok(accepts(automaton, '"a\\"b\\\\c\\nd"'));
  assert.ok(!accepts(automaton, '"a"b\\c\nd"'));
  const unanchored = automatonOf({ type: 'json_schema', schema: { type: 'string', pattern: '[0-9]{3}' } });
  assert.ok(accepts(unanchored, '"call 555 now"'));
  assert.ok(!accepts(unanchored, '"call 55 now"'));
});
