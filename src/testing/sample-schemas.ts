/**
 * Fifty assorted JSON schemas for tests of constrained decoding: nested
 * objects, arrays (with item bounds and tuples), enums and consts, integers
 * and numbers with inclusive and exclusive bounds, formats, patterns,
 * anyOf, type lists, $defs references, required and optional fields. Every
 * one describes a finite language (bounded strings, arrays and digits), so
 * even a random-weight model's output ends within a few hundred tokens.
 */

type Schema = Record<string, unknown>;

const FIELDS: Schema[] = [
  { type: 'string', maxLength: 8 },
  { type: 'string', minLength: 2, maxLength: 6 },
  { type: 'integer', minimum: 0, maximum: 120 },
  { type: 'integer', minimum: -50, maximum: 50 },
  { type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 1000 },
  { type: 'number', minimum: 0, maximum: 1 },
  { type: 'number', exclusiveMinimum: -1.5, maximum: 2.25 },
  { type: 'number', minimum: 10 },
  { type: 'boolean' },
  { type: 'null' },
  { enum: ['red', 'green', 'blue'] },
  { enum: [1, 2.5, 'x', null, true] },
  { const: 'fixed' },
  { type: 'string', format: 'date' },
  { type: 'string', format: 'uuid' },
  { type: 'string', pattern: '^[A-Z]{2}-[0-9]{3}$' },
  { type: 'array', items: { type: 'integer', minimum: 1, maximum: 9 }, minItems: 1, maxItems: 3 },
  { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 2 },
  { anyOf: [{ type: 'string', maxLength: 4 }, { type: 'integer', minimum: 0, maximum: 9 }] },
  { type: ['string', 'null'], maxLength: 5 },
  { type: 'array', prefixItems: [{ type: 'string', maxLength: 3 }, { type: 'boolean' }], items: false, minItems: 2 },
  { type: 'number', minimum: -0.001, exclusiveMaximum: 0.002 },
  { type: 'string', format: 'date-time' },
];

const NAMES = ['name', 'age', 'score', 'id', 'tags', 'color', 'active', 'note', 'when', 'code'];

function field(index: number): Schema {
  return FIELDS[index % FIELDS.length];
}

function objectOf(seed: number, size: number, depth: number): Schema {
  const properties: Record<string, Schema> = {};
  const required: string[] = [];
  for (let j = 0; j < size; j++) {
    const name = `${NAMES[(seed + j * 3) % NAMES.length]}${j}`;
    const nested = depth > 0 && (seed + j) % 4 === 0;
    properties[name] = nested ? objectOf(seed * 3 + j + 1, 2, depth - 1) : field(seed * 7 + j * 11);
    if ((seed + j) % 3 !== 1) required.push(name);
  }
  return { type: 'object', properties, required, additionalProperties: false };
}

/** The fifty schemas, always the same. */
export function sampleSchemas(): Schema[] {
  const schemas: Schema[] = [];
  for (let i = 0; i < 50; i++) {
    if (i % 10 === 3) {
      schemas.push({ $defs: { item: field(i), pair: objectOf(i, 2, 0) }, type: 'object', properties: { first: { $ref: '#/$defs/item' }, pair: { $ref: '#/$defs/pair' } }, required: ['first', 'pair'] });
    } else if (i % 10 === 7) {
      schemas.push({ type: 'array', items: objectOf(i, 2, 0), minItems: 1, maxItems: 2 });
    } else if (i % 10 === 9) {
      schemas.push({ type: 'object', properties: { list: { type: 'array', items: objectOf(i, 1 + (i % 3), 1), maxItems: 2 } }, required: ['list'] });
    } else {
      schemas.push(objectOf(i, 1 + (i % 5), 1));
    }
  }
  return schemas;
}
