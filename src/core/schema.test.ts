import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { array, int, object, oneOf, optional, record, str, tagged, type Schema } from './schema.js';

type Message = { type: 'a'; n: number; tag?: string } | { type: 'b'; items: number[] };

const message: Schema<Message> = tagged<Message>({
  a: object<Extract<Message, { type: 'a' }>>({ type: oneOf('a'), n: int(0, 10), tag: optional(str(4)) }),
  b: object<Extract<Message, { type: 'b' }>>({ type: oneOf('b'), items: array(int(-5, 5), 3) }),
});

const refused = (value: unknown, pattern: RegExp): void =>
  assert.throws(() => message(JSON.parse(JSON.stringify(value)) as unknown, 'm'), (error: Error & { code?: string }) => error.code === 'TESSERA_ERR_PROTOCOL' && pattern.test(error.message));

describe('schema', () => {
  it('passes well-formed values through, optional fields absent or present', () => {
    assert.deepEqual(message({ type: 'a', n: 3 }, 'm'), { type: 'a', n: 3 });
    assert.deepEqual(message({ type: 'a', n: 3, tag: 'ok' }, 'm'), { type: 'a', n: 3, tag: 'ok' });
    assert.deepEqual(message({ type: 'b', items: [-5, 0, 5] }, 'm'), { type: 'b', items: [-5, 0, 5] });
  });

  it('refuses wrong types, out-of-range numbers, long strings and arrays, naming the path', () => {
    refused({ type: 'a', n: 11 }, /^m\.n must be an integer in \[0, 10\]/);
    refused({ type: 'a', n: 1.5 }, /m\.n/);
    refused({ type: 'a', n: '3' }, /m\.n/);
    refused({ type: 'a', n: 1, tag: 'toolong' }, /m\.tag must be a string of at most 4/);
    refused({ type: 'b', items: [1, 2, 3, 4] }, /m\.items must be an array of 0 to 3/);
    refused({ type: 'b', items: [1, 9] }, /m\.items\[1\]/);
    refused({ type: 'c' }, /m\.type must be one of a, b/);
    refused(null, /m\.type/);
    refused([], /m\.type/);
  });

  it('refuses unknown keys, __proto__ included, and returns a fresh object of the named keys', () => {
    refused({ type: 'a', n: 1, extra: true }, /m\.extra must be absent/);
    const hostile = JSON.parse('{"type":"a","n":1,"__proto__":{"polluted":true}}') as unknown;
    assert.throws(() => message(hostile, 'm'), /m\.__proto__ must be absent/);
    const checked = object<{ n: number }>({ n: int(0, 1) })({ n: 1 }, 'x');
    assert.equal(Object.getPrototypeOf(checked), Object.prototype);
    const table = record(int(0, 9), 2)(JSON.parse('{"__proto__":1,"b":2}') as unknown, 'r');
    assert.equal(Object.getPrototypeOf(table), null);
    assert.throws(() => record(int(0, 9), 1)({ a: 1, b: 2 }, 'r'), /at most 1 keys/);
  });
});
