/**
 * Typed reads of a JSON request body's fields. Each read either returns a
 * value of the promised type (or undefined when the field is absent or
 * null) or throws a 400 naming the field and what it must be. Every read is
 * remembered, so once a handler has read what it supports, `rejectUnread`
 * turns any other field into a 400 naming it: nothing a client asks for is
 * silently ignored, except the fields a handler lists as accepted and
 * ignored (as OpenAI does with `store` or `metadata`).
 */
import { ApiError, badField } from './api-error.js';

export interface NumberRule {
  min: number;
  max: number;
  integer?: boolean;
  /** min itself is not allowed. */
  exclusiveMin?: boolean;
}

export class RequestFields {
  private readonly read = new Set<string>();
  private readonly nested: RequestFields[] = [];

  constructor(
    private readonly body: Record<string, unknown>,
    private readonly prefix = '',
  ) {}

  static of(body: unknown): RequestFields {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ApiError(400, 'the request body must be a JSON object', 'invalid_request_error', null, 'invalid_body');
    }
    return new RequestFields(body as Record<string, unknown>);
  }

  /** Fields of an object found inside a list (tools[i]), read with the same rules; its reader calls rejectUnread. */
  static within(body: Record<string, unknown>, prefix: string): RequestFields {
    return new RequestFields(body, prefix);
  }

  raw(name: string): unknown {
    this.read.add(name);
    const value = Object.hasOwn(this.body, name) ? this.body[name] : undefined;
    return value === null ? undefined : value;
  }

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  number(name: string, rule: NumberRule): number | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    const kind = rule.integer ? 'an integer' : 'a number';
    const low = rule.exclusiveMin ? `(${rule.min}` : `[${rule.min}`;
    const inRange = typeof value === 'number' && Number.isFinite(value) && (rule.exclusiveMin ? value > rule.min : value >= rule.min) && value <= rule.max;
    if (!inRange || (rule.integer && !Number.isInteger(value))) {
      throw badField(this.path(name), `${this.path(name)} must be ${kind} in ${low}, ${rule.max}]; got ${JSON.stringify(value)}`);
    }
    return value as number;
  }

  boolean(name: string): boolean | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') throw badField(this.path(name), `${this.path(name)} must be true or false; got ${JSON.stringify(value)}`);
    return value;
  }

  string(name: string): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw badField(this.path(name), `${this.path(name)} must be a string; got ${typeof value}`);
    return value;
  }

  requiredString(name: string): string {
    const value = this.string(name);
    if (value === undefined) throw badField(this.path(name), `${this.path(name)} is required`);
    return value;
  }

  /** A nested object, read with the same rules. */
  object(name: string): RequestFields | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) throw badField(this.path(name), `${this.path(name)} must be an object`);
    const nested = new RequestFields(value as Record<string, unknown>, `${this.path(name)}.`);
    this.nested.push(nested);
    return nested;
  }

  /** A 400 for the first field (here or in a nested object read with `object`) that nobody read and `ignored` does not list. */
  rejectUnread(ignored: readonly string[] = []): void {
    for (const name of Object.keys(this.body)) {
      if (this.read.has(name) || ignored.includes(name)) continue;
      const path = this.path(name);
      throw new ApiError(400, `${path} is not supported by this server; leave it out (see the README for the fields Tessera reads)`, 'invalid_request_error', path, 'unsupported_field');
    }
    for (const nested of this.nested) nested.rejectUnread();
  }

  /** `stop`: a string or a list of up to `max` strings. */
  stringList(name: string, max: number): string[] {
    const value = this.raw(name);
    if (value === undefined) return [];
    const list = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(list) || list.length > max || !list.every((item) => typeof item === 'string')) {
      throw badField(this.path(name), `${this.path(name)} must be a string or a list of at most ${max} strings`);
    }
    return list as string[];
  }

  path(name: string): string {
    return `${this.prefix}${name}`;
  }
}
