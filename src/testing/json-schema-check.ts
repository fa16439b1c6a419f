/**
 * JSON Schema validation for tests, by ajv (draft 2020-12, with ajv-formats):
 * a validator that shares nothing with Tessera's grammar compiler, so a test
 * that generates JSON under a schema and checks it here is not checking the
 * compiler against itself.
 */
import { createRequire } from 'node:module';

interface AjvValidate {
  (value: unknown): boolean;
  errors?: unknown[] | null;
}

interface Ajv {
  compile(schema: unknown): AjvValidate;
}

// ajv ships CommonJS; require keeps its default export's type simple under NodeNext.
const require = createRequire(import.meta.url);
const Ajv2020 = (require('ajv/dist/2020.js') as { default: new (options: object) => Ajv }).default;
const addFormats = (require('ajv-formats') as { default: (ajv: Ajv) => void }).default;

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const compiled = new WeakMap<object, AjvValidate>();

/** Checks a value against a schema: the problems found, empty when it validates. */
export type SchemaValidator = (value: unknown, schema: unknown) => string[];

export const checkJsonSchema: SchemaValidator = (value, schema) => {
  const key = schema as object;
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(key, validate);
  }
  return validate(value) ? [] : [JSON.stringify(validate.errors)];
};
