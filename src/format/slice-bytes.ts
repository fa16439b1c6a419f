/**
 * Arrays for stored tensor bytes read from a model file, and for other
 * large arrays a process keeps for long (KV pools). Large ones come
 * from the native addon on 2 MiB pages when it is built: a rank keeps the
 * stored bytes of its slices (src/cluster/held-shards.ts), so a re-shard
 * composes gigabytes of fresh memory, and fresh 4 KiB pages fault in at
 * microseconds each on a virtual machine (measured here: 600 MB in 2.2 s
 * on 4 KiB pages, 0.4 s on huge pages). Without the addon, or for small
 * arrays, a plain Uint8Array.
 *
 * The contents are unspecified (not zeroed): callers write every byte.
 */
import { loadNativeAddon } from '../backend/native/native-addon.js';

/** Below this, a page fault or two is not worth a 2 MiB-aligned allocation. */
const HUGE_FROM_BYTES = 4 << 20;

export function sliceBytes(length: number): Uint8Array {
  if (length >= HUGE_FROM_BYTES) {
    const load = loadNativeAddon();
    if (load.ok) return load.addon.hugeBytes(length);
  }
  return new Uint8Array(length);
}
