/**
 * The canonical reduction tree (backend.ts: leaves [lo, hi) split at
 * lo + floor((hi - lo) / 2)) laid out as a perfect binary tree, so a GPU can
 * fold it level by level: P = 2^ceil(log2 n) slots, the left half of a
 * node's slots holding its left subtree and the right half its right one; a
 * node of one leaf puts it in its first slot and leaves the rest empty.
 * Folding the slots pairwise, empties passing their sibling through, makes
 * exactly the additions of the recursive tree.
 */

/** [P] the leaf in each slot, or -1 for an empty one, for a row of `leaves` leaves. */
export function canonicalSlots(leaves: number): Int32Array {
  let size = 1;
  while (size < leaves) size *= 2;
  const slots = new Int32Array(size).fill(-1);
  const place = (lo: number, hi: number, first: number, width: number): void => {
    if (hi - lo === 1) {
      slots[first] = lo;
      return;
    }
    const mid = lo + Math.floor((hi - lo) / 2);
    place(lo, mid, first, width / 2);
    place(mid, hi, first + width / 2, width / 2);
  };
  if (leaves > 0) place(0, leaves, 0, size);
  return slots;
}
