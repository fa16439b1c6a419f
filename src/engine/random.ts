/**
 * The per-request random stream (DESIGN §4): a counter-based generator, so
 * the draw for a token depends only on (seed, position) — not on batching,
 * on what other requests did, or on which worker ran the step. A request
 * migrated to a new plan continues with the same draws.
 *
 * Definition (for other implementations to reproduce):
 *   mix(z)    = splitmix64's finalizer (xor-shift 30/27/31, multipliers
 *               0xbf58476d1ce4e5b9, 0x94d049bb133111eb), all mod 2^64
 *   key       = mix(seed mod 2^64)          (two's complement for negatives)
 *   bits      = mix(key + (position + 1) · 0x9e3779b97f4a7c15)
 *   uniform   = (bits >> 11) / 2^53         in [0, 1)
 */

const MASK64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;

function mix64(value: bigint): bigint {
  let z = value & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** 64 random bits for (seed, position); seed and position must be integers. */
export function randomBits(seed: number, position: number): bigint {
  const key = mix64(BigInt.asUintN(64, BigInt(seed)));
  return mix64(key + BigInt(position + 1) * GOLDEN_GAMMA);
}

/** A uniform number in [0, 1) with 53 random bits, fixed by (seed, position). */
export function uniform(seed: number, position: number): number {
  return Number(randomBits(seed, position) >> 11n) / 2 ** 53;
}
