/**
 * A small JSON schema validator for tests, written from the specification
 * for the keywords Tessera's constrained decoding supports (type, enum,
 * const, anyOf/oneOf/allOf, local $ref, properties/required/
 * additionalProperties, items/prefixItems/minItems/maxItems, string
 * lengths in code points, pattern, the formats date, time, date-time, uuid,
 * email, ipv4, and numeric bounds). It exists so the tests check the output
 * with code that shares nothing with the grammar compiler; the tests use
 * ajv instead when it is installed.
 */

type Schema = Record<string, unknown>;

const FORMAT_CHECKS: Record<string, (value: string) => boolean> = {
  date: (value) => /^\d{4}-\d{2}-\d{2}$/.test(value) && new Date(`${value}T00:00:00Z`).toISOString().startsWith(value),
  time: (value) => /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/i.test(value),
  'date-time': (value) => {
    const [date, time] = value.split(/T/i);
    return time !== undefined && FORMAT_CHECKS.date(date) && FORMAT_CHECKS.time(time);
  },
  uuid: (value) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value),
  email: (value) => /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i.test(value),
  ipv4: (value) => /^(\d{1,3})(\.\d{1,3}){3}$/.test(value) && value.split('.').every((part) => Number(part) <= 255 && String(Number(part)) === part),
};

/** Problems found, as "path: what"; empty when the value validates. */
export function checkJsonSchema(value: unknown, schema: unknown, root: unknown = schema, path = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path}: the schema false matches nothing`];
  const s = schema as Schema;
  const errors: string[] = [];
  const fail = (message: string): void => void errors.push(`${path}: ${message}`);
  if (typeof s.$ref === 'string') errors.push(...checkJsonSchema(value, resolve(root, s.$ref), root, path));
  if ('const' in s && JSON.stringify(s.const) !== JSON.stringify(value)) fail(`not the const ${JSON.stringify(s.const)}`);
  if (Array.isArray(s.enum) && !s.enum.some((item) => JSON.stringify(item) === JSON.stringify(value))) fail(`not in the enum`);
  if (Array.isArray(s.anyOf) && !s.anyOf.some((sub) => checkJsonSchema(value, sub, root, path).length === 0)) fail('matches no anyOf branch');
  if (Array.isArray(s.oneOf) && s.oneOf.filter((sub) => checkJsonSchema(value, sub, root, path).length === 0).length !== 1) fail('does not match exactly one oneOf branch');
  if (Array.isArray(s.allOf)) for (const sub of s.allOf) errors.push(...checkJsonSchema(value, sub, root, path));
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.some((type) => hasType(value, type as string))) fail(`not of type ${types.join('|')}`);
  }
  if (typeof value === 'string') errors.push(...checkString(value, s, path));
  if (typeof value === 'number') errors.push(...checkNumber(value, s, path));
  if (Array.isArray(value)) errors.push(...checkArray(value, s, root, path));
  else if (typeof value === 'object' && value !== null) errors.push(...checkObject(value as Schema, s, root, path));
  return errors;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'null':
      return value === null;
    default:
      return typeof value === type;
  }
}

function checkString(value: string, s: Schema, path: string): string[] {
  const errors: string[] = [];
  const length = [...value].length;
  if (typeof s.minLength === 'number' && length < s.minLength) errors.push(`${path}: shorter than ${s.minLength}`);
  if (typeof s.maxLength === 'number' && length > s.maxLength) errors.push(`${path}: longer than ${s.maxLength}`);
  if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(value)) errors.push(`${path}: does not match ${s.pattern}`);
  if (typeof s.format === 'string' && !(FORMAT_CHECKS[s.format] ?? (() => false))(value)) errors.push(`${path}: not a valid ${s.format}`);
  return errors;
}

function checkNumber(value: number, s: Schema, path: string): string[] {
  const errors: string[] = [];
  if (typeof s.minimum === 'number' && value < s.minimum) errors.push(`${path}: below minimum ${s.minimum}`);
  if (typeof s.maximum === 'number' && value > s.maximum) errors.push(`${path}: above maximum ${s.maximum}`);
  if (typeof s.exclusiveMinimum === 'number' && value <= s.exclusiveMinimum) errors.push(`${path}: not above ${s.exclusiveMinimum}`);
  if (typeof s.exclusiveMaximum === 'number' && value >= s.exclusiveMaximum) errors.push(`${path}: not below ${s.exclusiveMaximum}`);
  return errors;
}

function checkArray(value: unknown[], s: Schema, root: unknown, path: string): string[] {
  const errors: string[] = [];
  if (typeof s.minItems === 'number' && value.length < s.minItems) errors.push(`${path}: fewer than ${s.minItems} items`);
  if (typeof s.maxItems === 'number' && value.length > s.maxItems) errors.push(`${path}: more than ${s.maxItems} items`);
  const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
  value.forEach((item, index) => {
    const sub = index < prefix.length ? prefix[index] : s.items;
    if (sub !== undefined) errors.push(...checkJsonSchema(item, sub, root, `${path}[${index}]`));
  });
  return errors;
}

function checkObject(value: Schema, s: Schema, root: unknown, path: string): string[] {
  const errors: string[] = [];
  const properties = (s.properties ?? {}) as Schema;
  for (const name of (s.required ?? []) as string[]) if (!(name in value)) errors.push(`${path}: missing required "${name}"`);
  for (const [name, item] of Object.entries(value)) {
    if (name in properties) errors.push(...checkJsonSchema(item, properties[name], root, `${path}.${name}`));
    else if (s.additionalProperties === false) errors.push(`${path}: unexpected property "${name}"`);
    else if (typeof s.additionalProperties === 'object') errors.push(...checkJsonSchema(item, s.additionalProperties, root, `${path}.${name}`));
  }
  return errors;
}

function resolve(root: unknown, pointer: string): unknown {
  let target = root;
  for (const part of pointer.replace(/^#\/?/, '').split('/').filter((piece) => piece !== '')) target = (target as Schema)[part.replaceAll('~1', '/').replaceAll('~0', '~')];
  return target;
}

/** Checks a value against a schema: problems found, empty when it validates. */
export type SchemaValidator = (value: unknown, schema: unknown) => string[];

interface AjvLike {
  compile(schema: unknown): ((value: unknown) => boolean) & { errors?: unknown[] | null };
}

/**
 * ajv (draft 2020-12, with ajv-formats) when both are installed, so the
 * tests check with a real validator; otherwise checkJsonSchema above. Named
 * through variables so the build does not need them.
 */
export async function schemaValidator(): Promise<{ name: string; validate: SchemaValidator }> {
  const ajvModule = 'ajv/dist/2020.js';
  const formatsModule = 'ajv-formats';
  try {
    const { default: Ajv2020 } = (await import(ajvModule)) as { default: new (options: object) => AjvLike };
    const { default: addFormats } = (await import(formatsModule)) as { default: (ajv: AjvLike) => void };
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    return {
      name: 'ajv',
      validate: (value, schema) => {
        const check = ajv.compile(schema);
        return check(value) ? [] : [JSON.stringify(check.errors)];
      },
    };
  } catch {
    return { name: 'checkJsonSchema (ajv is not installed)', validate: (value, schema) => checkJsonSchema(value, schema) };
  }
}
