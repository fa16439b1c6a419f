/**
 * A compiled constraint over one vocabulary: which tokens may come next in
 * a given automaton state. A position is `state × 2 + atStart`, where
 * atStart says the output has no bytes yet and the tokenizer drops one
 * leading space of it (SentencePiece), so the automaton reads exactly the
 * bytes the client receives.
 *
 * A mask is a bitset over the logits' ids, computed by walking the
 * vocabulary trie with the automaton (a dead prefix prunes its whole
 * subtree) and cached per position: positions recur (inside a string, after
 * a comma), so most steps read a cached mask. End-of-sequence ids are added
 * by the cursor, since whether they may end a request is the request's
 * business (ignore_eos).
 */
import { TesseraError } from '../core/errors.js';
import { DEAD, type GrammarAutomaton } from '../grammar/grammar-automaton.js';
import type { VocabularyTrie } from './vocabulary-trie.js';

/** Cached masks of one grammar take at most this many bytes (the oldest go first). */
const MASK_CACHE_BYTES = 64 * 2 ** 20;
const SPACE = 0x20;

export class TokenGrammar {
  readonly start: number;
  private readonly masks = new Map<number, Uint32Array>();
  private readonly maxMasks: number;
  /** [trie depth + 1] the walk's state at each depth. */
  private readonly walkStates: Int32Array;

  constructor(
    readonly automaton: GrammarAutomaton,
    readonly trie: VocabularyTrie,
    /** Length of a logits row (may exceed the tokenizer's vocabulary). */
    readonly vocabSize: number,
  ) {
    this.start = automaton.start * 2 + (trie.stripsLeadingSpace ? 1 : 0);
    this.maxMasks = Math.max(16, Math.floor(MASK_CACHE_BYTES / (4 * Math.ceil(vocabSize / 32))));
    this.walkStates = new Int32Array(trie.maxDepth + 1);
  }

  /** The position after token `id`, or DEAD when the constraint does not allow it. */
  next(position: number, id: number): number {
    let bytes = this.trie.bytesOf(id);
    if (bytes.length === 0) return DEAD;
    if ((position & 1) === 1 && bytes[0] === SPACE) bytes = bytes.subarray(1);
    const state = this.automaton.nextAll(position >> 1, bytes);
    return state === DEAD ? DEAD : state * 2;
  }

  isAccepting(position: number): boolean {
    return this.automaton.isAccepting(position >> 1);
  }

  /** Complete, and nothing may follow: the request can end without sampling again. */
  isFinished(position: number): boolean {
    return this.automaton.isFinished(position >> 1);
  }

  /** The mask of a position when it is cached (no walk). */
  cachedMask(position: number): Uint32Array | undefined {
    return this.masks.get(position);
  }

  /** [ceil(vocabSize / 32)] bit id set when token id may come next (end-of-sequence ids not included). */
  mask(position: number): Uint32Array {
    let mask = this.masks.get(position);
    if (mask) {
      // Refresh its place in the eviction order.
      this.masks.delete(position);
      this.masks.set(position, mask);
      return mask;
    }
    mask = this.walk(position);
    if (this.masks.size >= this.maxMasks) this.masks.delete(this.masks.keys().next().value!);
    this.masks.set(position, mask);
    return mask;
  }

  private walk(position: number): Uint32Array {
    const mask = new Uint32Array(Math.ceil(this.vocabSize / 32));
    const { edgeBytes, depths, subtreeEnds, tokenStarts, tokenIds, nodeCount } = this.trie;
    const automaton = this.automaton;
    const states = this.walkStates;
    const stripSpace = (position & 1) === 1;
    states[0] = position >> 1;
    let node = 0;
    while (node < nodeCount) {
      const depth = depths[node];
      const byte = edgeBytes[node];
      // The leading space the decoder drops is no byte of the output: the state stays.
      const state = stripSpace && depth === 1 && byte === SPACE ? states[0] : automaton.next(states[depth - 1], byte);
      if (state === DEAD) {
        node = subtreeEnds[node];
        continue;
      }
      states[depth] = state;
      for (let k = tokenStarts[node]; k < tokenStarts[node + 1]; k++) {
        const id = tokenIds[k];
        if (id < this.vocabSize) mask[id >>> 5] |= 1 << (id & 31);
      }
      node++;
    }
    return mask;
  }
}

export function maskAllows(mask: Uint32Array, id: number): boolean {
  return ((mask[id >>> 5] >>> (id & 31)) & 1) === 1;
}

/** A copy of `logits` with every id outside the mask (and not in `extra`) at −∞. */
export function maskedLogits(logits: Float32Array, mask: Uint32Array, extra: readonly number[]): Float32Array {
  /** [vocabSize] */
  const out = new Float32Array(logits.length).fill(-Infinity);
  let allowed = 0;
  for (let word = 0; word < mask.length; word++) {
    let bits = mask[word];
    while (bits !== 0) {
      const low = bits & -bits;
      const id = word * 32 + 31 - Math.clz32(low);
      out[id] = logits[id];
      allowed++;
      bits ^= low;
    }
  }
  for (const id of extra) {
    out[id] = logits[id];
    allowed++;
  }
  if (allowed === 0) throw new TesseraError('TESSERA_ERR_GRAMMAR', 'no token of the vocabulary can continue the constrained output here; the tokenizer cannot write what the constraint requires');
  return out;
}
