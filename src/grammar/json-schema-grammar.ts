/**
 * A JSON schema as a grammar of the JSON texts that validate against it:
 * objects write their properties in the schema's order (required ones
 * always, optional ones maybe), arrays their item counts within bounds,
 * strings their lengths, pattern or format, numbers their bounds, and
 * enum/const their exact values; anyOf/oneOf/type lists are alternatives
 * and $ref (to #, #/$defs/…, #/definitions/…) becomes a rule, so recursive
 * schemas work. A keyword the grammar cannot honour is refused with its
 * path rather than ignored; annotations (title, description, …) are read
 * past.
 */
import { TesseraError } from '../core/errors.js';
import { alt, chars, EMPTY, grammarOf, MAX_CODE_POINT, optional, ref, repeat, seq, text, type Grammar, type GrammarNode } from './grammar.js';
import { jsonBaseRules, jsonEncoded, jsonInteger, jsonNumber, jsonString, jsonValueRules, literalJson, WS } from './json-text.js';
import { integerInRange, numberInRange, type NumberBounds } from './number-range.js';
import { parseRegex } from './regex-syntax.js';
import { formatPattern } from './string-formats.js';

type Schema = Record<string, unknown>;

const ANNOTATIONS = ['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly', '$defs', 'definitions'];
const KEYWORDS = new Set([
  ...ANNOTATIONS,
  ...['type', 'enum', 'const', 'anyOf', 'oneOf', 'allOf', '$ref'],
  ...['properties', 'required', 'additionalProperties'],
  ...['items', 'prefixItems', 'minItems', 'maxItems'],
  ...['minLength', 'maxLength', 'pattern', 'format'],
  ...['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
]);
const TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'];
const SEPARATOR = seq(WS, text(','), WS);

export function jsonSchemaGrammar(schema: unknown): Grammar {
  return new SchemaCompiler(schema).compile();
}

class SchemaCompiler {
  private readonly rules = new Map<string, GrammarNode>(jsonBaseRules());
  private readonly refs = new Set<string>();
  private objectCount = 0;

  constructor(private readonly root: unknown) {}

  compile(): Grammar {
    const top = this.node(this.root, '#');
    return grammarOf([['root', top], ...this.rules]);
  }

  private fail(path: string, message: string): never {
    throw new TesseraError('TESSERA_ERR_GRAMMAR', `json_schema ${path}: ${message}`);
  }

  private node(value: unknown, path: string): GrammarNode {
    if (value === true) return this.anyValue();
    if (value === false) this.fail(path, 'the schema false matches nothing');
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(path, 'a schema must be an object or a boolean');
    const schema = value as Schema;
    for (const key of Object.keys(schema)) if (!KEYWORDS.has(key)) this.fail(`${path}/${key}`, `the keyword "${key}" is not supported (Tessera refuses what it cannot enforce)`);
    if (schema.$ref !== undefined) return this.reference(schema, path);
    if (schema.const !== undefined) return literalJson(schema.const);
    if (schema.enum !== undefined) return this.enumeration(schema.enum, path);
    for (const key of ['anyOf', 'oneOf'] as const) if (schema[key] !== undefined) return alt(...this.list(schema[key], `${path}/${key}`).map((item, i) => this.node(item, `${path}/${key}/${i}`)));
    if (schema.allOf !== undefined) {
      const all = this.list(schema.allOf, `${path}/allOf`);
      if (all.length !== 1) this.fail(`${path}/allOf`, 'allOf is supported only with a single schema');
      return this.node(all[0], `${path}/allOf/0`);
    }
    return this.typed(schema, path);
  }

  private list(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value) || value.length === 0) this.fail(path, 'must be a non-empty list');
    return value;
  }

  private enumeration(values: unknown, path: string): GrammarNode {
    return alt(...this.list(values, `${path}/enum`).map(literalJson));
  }

  private reference(schema: Schema, path: string): GrammarNode {
    const pointer = schema.$ref;
    if (typeof pointer !== 'string' || !(pointer === '#' || pointer.startsWith('#/'))) this.fail(`${path}/$ref`, 'only local references (#, #/$defs/NAME) are supported');
    const name = `ref:${pointer}`;
    if (!this.refs.has(name)) {
      this.refs.add(name);
      this.rules.set(name, this.node(this.resolve(pointer, path), pointer));
    }
    return ref(name);
  }

  private resolve(pointer: string, path: string): unknown {
    let target: unknown = this.root;
    for (const part of pointer.slice(2).split('/').filter((piece) => piece !== '')) {
      const key = part.replaceAll('~1', '/').replaceAll('~0', '~');
      if (typeof target !== 'object' || target === null || !(key in target)) this.fail(`${path}/$ref`, `${pointer} does not resolve`);
      target = (target as Schema)[key];
    }
    return target;
  }

  private typed(schema: Schema, path: string): GrammarNode {
    const types = schema.type === undefined ? [inferType(schema)] : Array.isArray(schema.type) ? schema.type : [schema.type];
    return alt(
      ...types.map((type: unknown) => {
        if (type === undefined) return this.anyValue();
        if (typeof type !== 'string' || !TYPES.includes(type)) this.fail(`${path}/type`, `unknown type ${JSON.stringify(type)}`);
        return this.ofType(type, schema, path);
      }),
    );
  }

  private ofType(type: string, schema: Schema, path: string): GrammarNode {
    switch (type) {
      case 'string':
        return this.string(schema, path);
      case 'integer':
        return hasBounds(schema) ? integerInRange(bounds(schema), path) : jsonInteger();
      case 'number':
        return hasBounds(schema) ? numberInRange(bounds(schema), path) : jsonNumber();
      case 'boolean':
        return alt(text('true'), text('false'));
      case 'null':
        return text('null');
      case 'object':
        return this.object(schema, path);
      default:
        return this.array(schema, path);
    }
  }

  private string(schema: Schema, path: string): GrammarNode {
    const min = count(schema.minLength, `${path}/minLength`) ?? 0;
    const max = count(schema.maxLength, `${path}/maxLength`) ?? Infinity;
    if (max < min) this.fail(path, 'maxLength is below minLength');
    const pattern = schema.format !== undefined ? formatPattern(String(schema.format), `${path}/format`) : schema.pattern;
    if (pattern === undefined) return jsonString(min, max);
    if (typeof pattern !== 'string') this.fail(`${path}/pattern`, 'must be a string');
    if (schema.minLength !== undefined || schema.maxLength !== undefined) this.fail(path, 'minLength/maxLength together with a pattern or format are not supported; put the length in the pattern');
    const parsed = parseRegex(pattern);
    const anything = repeat(chars([0, MAX_CODE_POINT]), 0, Infinity);
    // A JSON schema pattern matches anywhere in the string unless anchored.
    const value = seq(parsed.anchoredStart ? EMPTY : anything, parsed.node, parsed.anchoredEnd ? EMPTY : anything);
    return seq(text('"'), jsonEncoded(value), text('"'));
  }

  private object(schema: Schema, path: string): GrammarNode {
    const properties = schema.properties ?? {};
    if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) this.fail(`${path}/properties`, 'must be an object');
    const names = Object.keys(properties);
    const required = new Set(stringList(schema.required, `${path}/required`));
    for (const name of required) if (!names.includes(name)) this.fail(`${path}/required`, `"${name}" is required but not among the properties`);
    if (names.length === 0) return this.mapObject(schema.additionalProperties, path);
    // first_i: members i.. with none written yet; rest_i: members i.. after one was written (each needs a comma).
    const id = this.objectCount++;
    let first: GrammarNode = EMPTY;
    let rest: GrammarNode = EMPTY;
    for (let i = names.length - 1; i >= 0; i--) {
      const name = names[i];
      const member = seq(literalJson(name), WS, text(':'), WS, this.node((properties as Schema)[name], `${path}/properties/${name}`));
      const isOptional = !required.has(name);
      const restName = `object${id}-rest${i}`;
      const firstName = `object${id}-first${i}`;
      this.rules.set(restName, alt(seq(SEPARATOR, member, rest), ...(isOptional ? [rest] : [])));
      this.rules.set(firstName, alt(seq(member, rest), ...(isOptional ? [first] : [])));
      rest = ref(restName);
      first = ref(firstName);
    }
    return seq(text('{'), WS, first, WS, text('}'));
  }

  /** An object without listed properties: any keys, values of the additionalProperties schema. */
  private mapObject(additional: unknown, path: string): GrammarNode {
    if (additional === false) return seq(text('{'), WS, text('}'));
    const value = additional === undefined || additional === true ? this.anyValue() : this.node(additional, `${path}/additionalProperties`);
    const member = seq(jsonString(), WS, text(':'), WS, value);
    return seq(text('{'), WS, optional(seq(member, repeat(seq(SEPARATOR, member), 0, Infinity), WS)), text('}'));
  }

  private array(schema: Schema, path: string): GrammarNode {
    const prefix = schema.prefixItems === undefined ? [] : this.list(schema.prefixItems, `${path}/prefixItems`);
    const min = count(schema.minItems, `${path}/minItems`) ?? 0;
    let max = count(schema.maxItems, `${path}/maxItems`) ?? Infinity;
    if (schema.items === false) max = Math.min(max, prefix.length);
    if (max < min) this.fail(path, 'no item count satisfies minItems, maxItems and items');
    const itemNode = schema.items === undefined || schema.items === false ? this.anyValue() : this.node(schema.items, `${path}/items`);
    const at = (index: number): GrammarNode => (index < prefix.length ? this.node(prefix[index], `${path}/prefixItems/${index}`) : itemNode);
    // After the tuple part every item has the same schema, so the tail is one repetition.
    const fixed = Math.max(min, prefix.length);
    let tail: GrammarNode = max > fixed ? repeat(seq(SEPARATOR, itemNode), 0, max - fixed) : EMPTY;
    for (let index = Math.min(fixed, max) - 1; index >= 0; index--) {
      const element = index === 0 ? at(0) : seq(SEPARATOR, at(index));
      tail = index >= min ? optional(seq(element, tail)) : seq(element, tail);
    }
    if (fixed === 0 && max > 0) tail = optional(seq(itemNode, repeat(seq(SEPARATOR, itemNode), 0, max - 1)));
    return seq(text('['), WS, tail, WS, text(']'));
  }

  private anyValue(): GrammarNode {
    for (const [name, node] of jsonValueRules()) if (!this.rules.has(name)) this.rules.set(name, node);
    return ref('json-value');
  }
}

function inferType(schema: Schema): string | undefined {
  if (['properties', 'required', 'additionalProperties'].some((key) => key in schema)) return 'object';
  if (['items', 'prefixItems', 'minItems', 'maxItems'].some((key) => key in schema)) return 'array';
  if (['minLength', 'maxLength', 'pattern', 'format'].some((key) => key in schema)) return 'string';
  if (hasBounds(schema)) return 'number';
  return undefined;
}

function hasBounds(schema: Schema): boolean {
  return ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'].some((key) => schema[key] !== undefined);
}

/** Bounds, with draft-4 boolean exclusiveMinimum/Maximum read as "the minimum/maximum is exclusive". */
function bounds(schema: Schema): NumberBounds {
  const number = (key: string): number | undefined => {
    const value = schema[key];
    if (value === undefined || typeof value === 'boolean') return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new TesseraError('TESSERA_ERR_GRAMMAR', `json_schema: ${key} must be a number`);
    return value;
  };
  const result: NumberBounds = { minimum: number('minimum'), maximum: number('maximum'), exclusiveMinimum: number('exclusiveMinimum'), exclusiveMaximum: number('exclusiveMaximum') };
  if (schema.exclusiveMinimum === true) [result.exclusiveMinimum, result.minimum] = [result.minimum, undefined];
  if (schema.exclusiveMaximum === true) [result.exclusiveMaximum, result.maximum] = [result.maximum, undefined];
  return result;
}

function count(value: unknown, path: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new TesseraError('TESSERA_ERR_GRAMMAR', `json_schema ${path}: must be a non-negative integer`);
  return value;
}

function stringList(value: unknown, path: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new TesseraError('TESSERA_ERR_GRAMMAR', `json_schema ${path}: must be a list of property names`);
  return value;
}
