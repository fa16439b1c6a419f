/**
 * JSON number text whose value lies within bounds, as a grammar. Bounded
 * numbers are written with at most 9 integer and 6 fraction digits (15
 * significant digits, so every text parses to a distinct double and order
 * is kept); integers with at most 15 digits. Bounds are rounded inward to
 * that grid and checked in double arithmetic, the way a validator compares
 * them, so every text the grammar allows validates.
 */
import { TesseraError } from '../core/errors.js';
import { alt, chars, EMPTY, repeat, seq, text, type GrammarNode } from './grammar.js';

export interface NumberBounds {
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

const INTEGER_LIMIT = 10 ** 15 - 1;
const NUMBER_SCALE = 10 ** 6;
const NUMBER_LIMIT = 10 ** 15 - 1; // scaled: 9 integer digits + 6 fraction digits
const FRACTION_DIGITS = 6;
const NONE: GrammarNode = { kind: 'alt', items: [] };
const DIGIT = chars([0x30, 0x39]);

/** Integer text in the bounds (fractional bounds round inward). */
export function integerInRange(bounds: NumberBounds, where: string): GrammarNode {
  const [low, high] = scaledRange(bounds, 1, INTEGER_LIMIT, where);
  return signed(low, high, (a, b) => uintText(a, b));
}

/** Number text in the bounds: an integer part and up to 6 fraction digits. */
export function numberInRange(bounds: NumberBounds, where: string): GrammarNode {
  const [low, high] = scaledRange(bounds, NUMBER_SCALE, NUMBER_LIMIT, where);
  return signed(low, high, magnitudeText);
}

/** [low, high] in units of 1/scale, the smallest and largest grid values inside the bounds. */
function scaledRange(bounds: NumberBounds, scale: number, limit: number, where: string): [number, number] {
  let low = -limit;
  let high = limit;
  const lower = [bounds.minimum, bounds.exclusiveMinimum];
  const upper = [bounds.maximum, bounds.exclusiveMaximum];
  lower.forEach((bound, index) => {
    if (bound === undefined) return;
    const strict = index === 1;
    let value = Math.max(-limit - 1, Math.ceil(bound * scale));
    while (value / scale < bound || (strict && value / scale === bound)) value++;
    while (value - 1 >= -limit && ((value - 1) / scale > bound || (!strict && (value - 1) / scale === bound))) value--;
    low = Math.max(low, value);
  });
  upper.forEach((bound, index) => {
    if (bound === undefined) return;
    const strict = index === 1;
    let value = Math.min(limit + 1, Math.floor(bound * scale));
    while (value / scale > bound || (strict && value / scale === bound)) value--;
    while (value + 1 <= limit && ((value + 1) / scale < bound || (!strict && (value + 1) / scale === bound))) value++;
    high = Math.min(high, value);
  });
  if (low > high) {
    throw new TesseraError('TESSERA_ERR_GRAMMAR', `${where}: no number Tessera can write lies within the bounds (it writes up to ${scale === 1 ? '15 digits' : '9 integer and 6 fraction digits'})`);
  }
  return [low, high];
}

/** Non-negative part as is, negative part as "-" and its magnitude. */
function signed(low: number, high: number, magnitude: (a: number, b: number) => GrammarNode): GrammarNode {
  const parts: GrammarNode[] = [];
  if (high >= 0) parts.push(magnitude(Math.max(low, 0), high));
  if (low < 0) parts.push(seq(text('-'), magnitude(Math.max(-high, 1), -low)));
  return alt(...parts);
}

/** Decimal text of a scaled magnitude in [a, b]: integer part, then an optional fraction. */
function magnitudeText(a: number, b: number): GrammarNode {
  const [aInt, aFrac] = splitScaled(a);
  const [bInt, bFrac] = splitScaled(b);
  const top = '9'.repeat(FRACTION_DIGITS);
  const bottom = '0'.repeat(FRACTION_DIGITS);
  if (aInt === bInt) return seq(uintText(aInt, aInt), fraction(aFrac, bFrac));
  const parts = [seq(uintText(aInt, aInt), fraction(aFrac, top))];
  if (bInt - aInt >= 2) parts.push(seq(uintText(aInt + 1, bInt - 1), fraction(bottom, top)));
  parts.push(seq(uintText(bInt, bInt), fraction(bottom, bFrac)));
  return alt(...parts);
}

function splitScaled(value: number): [number, string] {
  return [Math.floor(value / NUMBER_SCALE), String(value % NUMBER_SCALE).padStart(FRACTION_DIGITS, '0')];
}

/** Nothing, or "." and 1–6 digits, whose value padded with zeros lies in [low, high] (6-digit strings). */
function fraction(low: string, high: string): GrammarNode {
  const digits = fractionDigits(low, high);
  const withDot = digits.nonEmpty === NONE ? undefined : seq(text('.'), digits.nonEmpty);
  return alt(...(digits.empty ? [EMPTY] : []), ...(withDot ? [withDot] : []));
}

interface DigitLanguage {
  /** The empty string (read as zeros) is in range. */
  empty: boolean;
  nonEmpty: GrammarNode;
}

/** Digit strings of length 0..n whose zero-padded value lies in [low, high] (both n digits). */
function fractionDigits(low: string, high: string): DigitLanguage {
  if (low.length === 0) return { empty: true, nonEmpty: NONE };
  const empty = /^0*$/.test(low);
  const first = (digit: number, rest: DigitLanguage): GrammarNode | undefined => {
    const tail = alt(...(rest.empty ? [EMPTY] : []), ...(rest.nonEmpty === NONE ? [] : [rest.nonEmpty]));
    return rest.empty || rest.nonEmpty !== NONE ? seq(text(String(digit)), tail) : undefined;
  };
  const lowDigit = Number(low[0]);
  const highDigit = Number(high[0]);
  const n = low.length - 1;
  const parts: (GrammarNode | undefined)[] = [];
  if (lowDigit === highDigit) parts.push(first(lowDigit, fractionDigits(low.slice(1), high.slice(1))));
  else {
    parts.push(first(lowDigit, fractionDigits(low.slice(1), '9'.repeat(n))));
    if (highDigit - lowDigit >= 2) parts.push(seq(chars([0x30 + lowDigit + 1, 0x30 + highDigit - 1]), repeat(DIGIT, 0, n)));
    parts.push(first(highDigit, fractionDigits('0'.repeat(n), high.slice(1))));
  }
  const kept = parts.filter((part): part is GrammarNode => part !== undefined);
  return { empty, nonEmpty: kept.length === 0 ? NONE : alt(...kept) };
}

/** Integers in [a, b] (a ≥ 0) without leading zeros. */
export function uintText(a: number, b: number): GrammarNode {
  const parts: GrammarNode[] = [];
  for (let length = String(a).length; length <= String(b).length; length++) {
    const from = Math.max(a, length === 1 ? 0 : 10 ** (length - 1));
    const to = Math.min(b, 10 ** length - 1);
    if (from <= to) parts.push(sameLength(String(from), String(to)));
  }
  return alt(...parts);
}

/** Digit strings of one length between low and high inclusive. */
function sameLength(low: string, high: string): GrammarNode {
  if (low.length === 0) return EMPTY;
  if (low === high) return text(low);
  if (/^0*$/.test(low) && /^9*$/.test(high)) return repeat(DIGIT, low.length, low.length);
  const n = low.length - 1;
  if (low[0] === high[0]) return seq(text(low[0]), sameLength(low.slice(1), high.slice(1)));
  const lowDigit = Number(low[0]);
  const highDigit = Number(high[0]);
  const parts = [seq(text(low[0]), sameLength(low.slice(1), '9'.repeat(n)))];
  if (highDigit - lowDigit >= 2) parts.push(seq(chars([0x30 + lowDigit + 1, 0x30 + highDigit - 1]), repeat(DIGIT, n, n)));
  parts.push(seq(text(high[0]), sameLength('0'.repeat(n), high.slice(1))));
  return alt(...parts);
}
