/**
 * Field-level mutations of a JSON message for fuzzing a protocol: one field
 * (named by a path) replaced with a value of the wrong type, a boundary
 * number, a huge string or array, or an extra key added. Each names itself
 * for the fuzzer's report.
 */
import fc from 'fast-check';

export interface JsonMutation {
  /** Dotted path with [index] steps, e.g. `segments[0].blockTable[1]`; a path ending in `+key` adds a key. */
  path: string;
  value: unknown;
  label: string;
}

const NASTY: [string, unknown][] = [
  ['-1', -1],
  ['0', 0],
  ['2^31', 2 ** 31],
  ['2^32', 2 ** 32],
  ['2^53', 2 ** 53],
  ['1e308', 1e308],
  ['-2^31-1', -(2 ** 31) - 1],
  ['0.5', 0.5],
  ['"x"', 'x'],
  ['null', null],
  ['true', true],
  ['[]', []],
  ['{}', {}],
  ['long string', 'A'.repeat(100_000)],
  ['long array', new Array<number>(200_000).fill(3)],
  ['nested', { type: 'step', generation: 1 }],
];

export function jsonMutationArbitrary(paths: readonly string[]): fc.Arbitrary<JsonMutation> {
  return fc.record({ path: fc.constantFrom(...paths), nasty: fc.constantFrom(...NASTY) }).map(({ path, nasty }) => ({ path, value: nasty[1], label: `${path}=${nasty[0]}` }));
}

/** A deep copy of `message` with the mutation applied. */
export function applyJsonMutation(message: unknown, mutation: JsonMutation): unknown {
  const copy = JSON.parse(JSON.stringify(message)) as unknown;
  const steps = mutation.path.split(/\.|(?=\[)/).map((step) => (step.startsWith('[') ? Number(step.slice(1, -1)) : step));
  let at = copy as Record<string | number, unknown>;
  for (const step of steps.slice(0, -1)) at = at[step] as Record<string | number, unknown>;
  const last = steps[steps.length - 1]!;
  if (typeof last === 'string' && last.startsWith('+')) Object.defineProperty(at, last.slice(1), { value: mutation.value, enumerable: true });
  else at[last] = mutation.value;
  return copy;
}
