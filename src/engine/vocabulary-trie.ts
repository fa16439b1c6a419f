/**
 * The vocabulary as a byte trie laid out in preorder: node i has the byte
 * on the edge into it, its depth, the index just past its subtree, and the
 * tokens whose bytes end there. A mask walk (token-grammar.ts) visits the
 * nodes in order carrying one automaton state per depth and jumps past a
 * subtree the moment its prefix is impossible, so the tokens sharing a
 * prefix share its work. Tokens without output bytes (control tokens, ids
 * past the tokenizer's vocabulary) are not in the trie.
 */
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export class VocabularyTrie {
  /** [nodes] the byte on the edge into the node. */
  readonly edgeBytes: Uint8Array;
  /** [nodes] depth of the node (1 = a first byte). */
  readonly depths: Uint16Array;
  /** [nodes] index of the first node after this node's subtree. */
  readonly subtreeEnds: Int32Array;
  /** [nodes + 1] tokens ending at node i are tokenIds[tokenStarts[i] .. tokenStarts[i + 1]). */
  readonly tokenStarts: Int32Array;
  readonly tokenIds: Int32Array;
  readonly maxDepth: number;
  /** The output bytes of every id below the tokenizer's vocabulary size. */
  readonly tokenBytes: readonly Uint8Array[];
  /** Output drops one leading space of the first token (SentencePiece), as StreamDecoder does. */
  readonly stripsLeadingSpace: boolean;

  private constructor(tokenizer: Tokenizer) {
    this.stripsLeadingSpace = tokenizer.stripsLeadingSpace;
    const bytes: Uint8Array[] = [];
    for (let id = 0; id < tokenizer.vocabSize; id++) bytes.push(tokenizer.isSpecial(id) ? new Uint8Array(0) : tokenizer.tokenBytes(id));
    this.tokenBytes = bytes;
    const order = bytes.map((_, id) => id).filter((id) => bytes[id].length > 0);
    order.sort((a, b) => Buffer.compare(bytes[a], bytes[b]) || a - b);
    const built = buildPreorder(order.map((id) => bytes[id]));
    this.edgeBytes = built.edgeBytes;
    this.depths = built.depths;
    this.subtreeEnds = built.subtreeEnds;
    this.maxDepth = built.maxDepth;
    // Tokens attach in sorted order, so node by node; a counting pass gives the offsets.
    const counts = new Int32Array(built.edgeBytes.length + 1);
    for (const node of built.tokenNodes) counts[node + 1]++;
    for (let i = 1; i < counts.length; i++) counts[i] += counts[i - 1];
    this.tokenStarts = counts;
    this.tokenIds = Int32Array.from(order);
  }

  private static readonly byTokenizer = new WeakMap<Tokenizer, VocabularyTrie>();

  /** The trie of a tokenizer, built once (about 0.1 s for 32k tokens) and shared. */
  static of(tokenizer: Tokenizer): VocabularyTrie {
    let trie = VocabularyTrie.byTokenizer.get(tokenizer);
    if (!trie) {
      trie = new VocabularyTrie(tokenizer);
      VocabularyTrie.byTokenizer.set(tokenizer, trie);
    }
    return trie;
  }

  get nodeCount(): number {
    return this.edgeBytes.length;
  }

  /** Output bytes of a token (empty for control tokens and ids past the vocabulary). */
  bytesOf(id: number): Uint8Array {
    return this.tokenBytes[id] ?? EMPTY;
  }
}

const EMPTY = new Uint8Array(0);

interface Preorder {
  edgeBytes: Uint8Array;
  depths: Uint16Array;
  subtreeEnds: Int32Array;
  /** [tokens] the node each sorted token ends at. */
  tokenNodes: Int32Array;
  maxDepth: number;
}

/** Nodes in preorder from byte strings in sorted order (each string's node is on the current path). */
function buildPreorder(sorted: Uint8Array[]): Preorder {
  const edgeBytes: number[] = [];
  const depths: number[] = [];
  const subtreeEnds: number[] = [];
  const tokenNodes = new Int32Array(sorted.length);
  const path: number[] = []; // path[d] = node at depth d + 1
  let previous: Uint8Array = new Uint8Array(0);
  let maxDepth = 0;
  sorted.forEach((bytes, index) => {
    let common = 0;
    while (common < previous.length && common < bytes.length && previous[common] === bytes[common]) common++;
    while (path.length > common) subtreeEnds[path.pop()!] = edgeBytes.length;
    for (let depth = common; depth < bytes.length; depth++) {
      path.push(edgeBytes.length);
      edgeBytes.push(bytes[depth]);
      depths.push(depth + 1);
      subtreeEnds.push(-1);
    }
    tokenNodes[index] = path[bytes.length - 1];
    maxDepth = Math.max(maxDepth, bytes.length);
    previous = bytes;
  });
  while (path.length > 0) subtreeEnds[path.pop()!] = edgeBytes.length;
  return { edgeBytes: Uint8Array.from(edgeBytes), depths: Uint16Array.from(depths), subtreeEnds: Int32Array.from(subtreeEnds), tokenNodes, maxDepth };
}
