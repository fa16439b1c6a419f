/**
 * Byte mutations for fuzzing file and frame parsers with fast-check: bit
 * flips, byte and word overwrites with boundary values (the lengths and
 * counts that break parsers: 0, 1, 2^31, 2^32 − 1, 2^63...), truncation,
 * insertion and deletion, each confined to a region (a header) so the
 * mutations land on structure rather than on bulk data. Each mutation
 * names itself, so a fuzzer can report what it tried.
 */
import fc from 'fast-check';

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'u64'; at: number; value: bigint }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number };

const INTERESTING_U32 = [0, 1, 2, 3, 4, 7, 8, 16, 255, 256, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const INTERESTING_U64 = [0n, 1n, 2n, 8n, 0xffffffffn, 0x100000000n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];

/** One mutation with its position inside [0, regionLength). */
export function mutationArbitrary(regionLength: number): fc.Arbitrary<Mutation> {
  const at = fc.nat({ max: Math.max(0, regionLength - 1) });
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at, bit: fc.nat({ max: 7 }) }),
    fc.record({ kind: fc.constant('byte' as const), at, value: fc.oneof(fc.constantFrom(0, 1, 0x7f, 0x80, 0xff), fc.nat({ max: 255 })) }),
    fc.record({ kind: fc.constant('u32' as const), at, value: fc.oneof(fc.constantFrom(...INTERESTING_U32), fc.nat()) }),
    fc.record({ kind: fc.constant('u64' as const), at, value: fc.oneof(fc.constantFrom(...INTERESTING_U64), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })) }),
    fc.record({ kind: fc.constant('truncate' as const), at }),
    fc.record({ kind: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 16 }) }),
  );
}

/** A copy of `bytes` with the mutation applied (writes past the end are clipped). */
export function applyMutation(bytes: Uint8Array, mutation: Mutation): Uint8Array {
  const out = Buffer.from(bytes);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  switch (mutation.kind) {
    case 'flip':
      if (mutation.at < out.length) out[mutation.at]! ^= 1 << mutation.bit;
      return out;
    case 'byte':
      if (mutation.at < out.length) out[mutation.at] = mutation.value;
      return out;
    case 'u32':
      if (mutation.at + 4 <= out.length) view.setUint32(mutation.at, mutation.value, true);
      return out;
    case 'u64':
      if (mutation.at + 8 <= out.length) view.setBigUint64(mutation.at, mutation.value, true);
      return out;
    case 'truncate':
      return out.subarray(0, mutation.at);
    case 'insert':
      return Buffer.concat([out.subarray(0, mutation.at), mutation.bytes, out.subarray(mutation.at)]);
    case 'delete':
      return Buffer.concat([out.subarray(0, mutation.at), out.subarray(mutation.at + mutation.length)]);
  }
}

/** Several mutations in a row (most inputs need one; some bugs need two fields wrong at once). */
export function mutationsArbitrary(regionLength: number, most = 3): fc.Arbitrary<Mutation[]> {
  return fc.array(mutationArbitrary(regionLength), { minLength: 1, maxLength: most });
}

export function applyMutations(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  return mutations.reduce(applyMutation, bytes);
}

/** Counts by a label, for a fuzzer's report of what it tried. */
export class Tally {
  private readonly counts = new Map<string, number>();

  add(label: string): void {
    this.counts.set(label, (this.counts.get(label) ?? 0) + 1);
  }

  toString(): string {
    return [...this.counts.entries()].sort((a, b) => b[1] - a[1]).map(([label, count]) => `${label} ${count}`).join(', ');
  }
}

/** Fixed by default so CI is repeatable; TESSERA_FUZZ_SEED explores elsewhere, TESSERA_FUZZ_SCALE runs more cases. */
export function fuzzSettings(runs: number): { seed: number; numRuns: number } {
  const seed = Number(process.env.TESSERA_FUZZ_SEED ?? 0x7e55e7a);
  const scale = Number(process.env.TESSERA_FUZZ_SCALE ?? 1);
  return { seed, numRuns: Math.max(1, Math.round(runs * (Number.isFinite(scale) && scale > 0 ? scale : 1))) };
}
