/**
 * A YAML writer for manifests: plain data (objects, arrays, strings,
 * numbers, booleans, null) in block style. Every string is written as a
 * JSON string, which is a valid YAML double-quoted scalar, so no value can
 * be misread ("on", "0755", "1e3", a leading "*") whatever it holds; keys
 * are written bare only when they cannot be misread either. Properties set
 * to undefined are left out, as JSON.stringify leaves them out.
 */
import { TesseraError } from '../core/errors.js';

type Scalar = string | number | boolean | null;

const BARE_KEY = /^[A-Za-z_][A-Za-z0-9_.\/-]*$/;
const AMBIGUOUS_KEYS = new Set(['y', 'n', 'yes', 'no', 'on', 'off', 'true', 'false', 'null']);

function keyText(key: string): string {
  return BARE_KEY.test(key) && !AMBIGUOUS_KEYS.has(key.toLowerCase()) ? key : JSON.stringify(key);
}

function isScalar(value: unknown): value is Scalar {
  return value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number';
}

function scalarText(value: Scalar, path: string): string {
  if (typeof value === 'number' && !Number.isFinite(value)) throw notData(path, String(value));
  return JSON.stringify(value);
}

function notData(path: string, what: string): TesseraError {
  return new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `manifest value at ${path || '/'} is ${what}, which YAML for Kubernetes cannot hold`);
}

function entriesOf(value: object): [string, unknown][] {
  return Object.entries(value).filter((entry) => entry[1] !== undefined);
}

function isEmpty(value: unknown): boolean {
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === 'object' && value !== null && entriesOf(value).length === 0;
}

function inline(value: unknown, path: string): string {
  if (isScalar(value)) return scalarText(value, path);
  if (typeof value !== 'object') throw notData(path, typeof value);
  return Array.isArray(value) ? '[]' : '{}';
}

function itemLines(item: unknown, indent: number, path: string): string[] {
  const pad = ' '.repeat(indent);
  if (isScalar(item) || isEmpty(item) || typeof item !== 'object') return [`${pad}- ${inline(item, path)}`];
  // The item's first line follows the dash; the rest line up under it.
  const [first, ...rest] = blockLines(item, indent + 2, path);
  return [`${pad}- ${first!.slice(indent + 2)}`, ...rest];
}

/** The lines of an object or array nested at `indent` spaces. */
function blockLines(value: object, indent: number, path: string): string[] {
  if (Array.isArray(value)) return value.flatMap((item: unknown, index) => itemLines(item, indent, `${path}/${index}`));
  const pad = ' '.repeat(indent);
  return entriesOf(value).flatMap(([key, child]) => {
    const at = `${path}/${key}`;
    if (isScalar(child) || isEmpty(child) || typeof child !== 'object') return [`${pad}${keyText(key)}: ${inline(child, at)}`];
    // Lists sit at their key's indent (kubectl's style); maps one level in.
    return [`${pad}${keyText(key)}:`, ...blockLines(child, Array.isArray(child) ? indent : indent + 2, at)];
  });
}

/** One YAML document for an object. */
export function toYaml(value: object): string {
  return `${blockLines(value, 0, '').join('\n')}\n`;
}

/** Several documents in one stream, each after a `---` line; `header` lines become comments at the top. */
export function toYamlStream(documents: readonly object[], header: readonly string[] = []): string {
  const comments = header.map((line) => (line === '' ? '#' : `# ${line}`)).join('\n');
  const body = documents.map((document) => `---\n${toYaml(document)}`).join('');
  return comments === '' ? body : `${comments}\n${body}`;
}
