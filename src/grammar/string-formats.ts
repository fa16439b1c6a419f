/**
 * JSON schema string formats as patterns over the value. Each pattern
 * allows only strings every validator accepts for the format (dates have
 * real days of the month, up to the 28th in February; times carry a zone),
 * which is a subset of what the format allows: output stays valid.
 */
import { TesseraError } from '../core/errors.js';

const TWO_59 = '[0-5][0-9]';
const DATE = '[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))';
const TIME = `([01][0-9]|2[0-3]):${TWO_59}:${TWO_59}(\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):${TWO_59})`;
const LABEL = '[A-Za-z0-9]([A-Za-z0-9-]{0,14}[A-Za-z0-9])?';
const LOCAL = "[A-Za-z0-9_%+-]{1,16}(\\.[A-Za-z0-9_%+-]{1,16}){0,2}";

const FORMATS: Record<string, string> = {
  date: DATE,
  time: TIME,
  'date-time': `${DATE}T${TIME}`,
  uuid: '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
  email: `${LOCAL}@${LABEL}(\\.${LABEL}){0,2}\\.[A-Za-z]{2,8}`,
  ipv4: '((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])',
};

export const STRING_FORMATS = Object.keys(FORMATS);

/** The anchored pattern for a format, or a grammar error naming the ones supported. */
export function formatPattern(format: string, where: string): string {
  const pattern = FORMATS[format];
  if (pattern === undefined) {
    throw new TesseraError('TESSERA_ERR_GRAMMAR', `${where}: string format "${format}" is not supported; supported: ${STRING_FORMATS.join(', ')} (or give a pattern)`);
  }
  return `^${pattern}$`;
}
