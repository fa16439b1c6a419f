/**
 * `response_format`: OpenAI's `text`, `json_object` and `json_schema`, and
 * two extensions, `{"type": "regex", "regex": "..."}` and
 * `{"type": "grammar", "grammar": "<GBNF>"}`, as a Constraint the engine
 * decodes under. The constraint is compiled here once to turn a bad schema,
 * pattern or grammar into a 400 before anything is queued; compiled
 * constraints are remembered, so a client repeating one pays once.
 */
import { isTesseraError } from '../core/errors.js';
import { compileConstraint, constraintKey, type Constraint } from '../grammar/constraint.js';
import { ApiError, badField } from './api-error.js';
import type { RequestFields } from './request-fields.js';

const TYPES = ['text', 'json_object', 'json_schema', 'regex', 'grammar'];
const CHECKED_CAPACITY = 256;
const checked = new Set<string>();

export function parseResponseFormat(fields: RequestFields): Constraint | undefined {
  const format = fields.object('response_format');
  if (!format) return undefined;
  const type = format.requiredString('type');
  switch (type) {
    case 'text':
      return undefined;
    case 'json_object':
      return checkConstraint({ type });
    case 'json_schema': {
      const spec = format.object('json_schema');
      if (!spec) throw badField('response_format.json_schema', 'response_format.json_schema is required: {"name": ..., "schema": {...}}');
      spec.string('name');
      spec.string('description');
      spec.boolean('strict');
      const schema = spec.raw('schema');
      if (typeof schema !== 'object' && typeof schema !== 'boolean') throw badField('response_format.json_schema.schema', 'response_format.json_schema.schema must be a JSON schema object');
      return checkConstraint({ type, schema });
    }
    case 'regex':
      return checkConstraint({ type, pattern: format.requiredString('regex') });
    case 'grammar':
      return checkConstraint({ type, grammar: format.requiredString('grammar') });
    default:
      throw badField('response_format.type', `response_format.type must be one of ${TYPES.join(', ')}; got ${JSON.stringify(type)}`);
  }
}

/** The constraint, once it compiles; otherwise a 400 naming what is wrong (`param`: where it came from). */
export function checkConstraint(constraint: Constraint, param = 'response_format'): Constraint {
  const key = constraintKey(constraint);
  if (checked.has(key)) return constraint;
  try {
    compileConstraint(constraint);
  } catch (error) {
    if (isTesseraError(error) && error.code === 'TESSERA_ERR_GRAMMAR') throw new ApiError(400, `${param}: ${error.message}`, 'invalid_request_error', param, 'invalid_response_format');
    throw error;
  }
  if (checked.size >= CHECKED_CAPACITY) checked.delete(checked.values().next().value!);
  checked.add(key);
  return constraint;
}
