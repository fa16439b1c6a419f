/**
 * `bench serve --response-format`: the response_format the constrained half
 * of a run sends. `json_schema` is a records schema whose list must be long
 * (minItems 64), so a constrained request always runs to --output-len like
 * an unconstrained one and the two halves keep the same batch; its objects
 * mix integers and numbers with bounds, bounded strings, an email format, an
 * enum list and a boolean, so the masks come from many automaton states.
 */
import { readFileSync } from 'node:fs';
import { TesseraError } from '../core/errors.js';

const RECORD = {
  type: 'object',
  properties: {
    id: { type: 'integer', minimum: 0, maximum: 1000000 },
    name: { type: 'string', maxLength: 24 },
    email: { type: 'string', format: 'email' },
    score: { type: 'number', minimum: 0, maximum: 100 },
    tags: { type: 'array', items: { enum: ['new', 'vip', 'churn', 'trial'] }, maxItems: 4 },
    active: { type: 'boolean' },
  },
  required: ['id', 'name', 'score', 'active'],
  additionalProperties: false,
};

export const BENCH_RECORDS_SCHEMA = { type: 'array', items: RECORD, minItems: 64 };

/** json_object, json_schema (the records schema), a response_format object as JSON text, or @FILE holding one. */
export function benchResponseFormat(spec: string): Record<string, unknown> {
  if (spec === 'json_object') return { type: 'json_object' };
  if (spec === 'json_schema') return { type: 'json_schema', json_schema: { name: 'records', schema: BENCH_RECORDS_SCHEMA, strict: true } };
  const text = spec.startsWith('@') ? readFileSync(spec.slice(1), 'utf8') : spec;
  try {
    const format = JSON.parse(text) as unknown;
    if (typeof format === 'object' && format !== null && !Array.isArray(format)) return format as Record<string, unknown>;
  } catch {
    // Reported below with what is expected.
  }
  throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--response-format must be json_object, json_schema, a response_format JSON object or @FILE; got ${JSON.stringify(spec.slice(0, 60))}`);
}
