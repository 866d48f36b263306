// One Aho-Corasick automaton for every stop sequence of a request: a character of the answer costs the same however
// many sequences there are (stop-sequences.ts). Scanned for one by one, 200,000 short sequences cost ~10 ms of the
// event loop per streamed piece. Pure; built once per request, in arrays (no object per node: a body of many
// sequences would otherwise cost several times its size in memory).

export class StopAutomaton {
  /** Per node (breadth-first order, the root 0): where its children start; they are consecutive, sorted by character. */
  readonly #childStart: Int32Array;
  readonly #childCount: Int32Array;
  /** Per node: the character (UTF-16 code unit) on the edge into it. */
  readonly #char: Uint16Array;
  /** Per node: the node of its longest proper suffix that is a prefix of some sequence. */
  readonly #fail: Int32Array;
  /** Per node: the length of the text it stands for. */
  readonly #depth: Int32Array;
  /** Per node: the length of the longest sequence its text ends with (0: none). */
  readonly #matchLength: Int32Array;

  /** `sequences`: non-empty and distinct. */
  constructor(sequences: readonly string[]) {
    const trie = buildTrie(sequences);
    const count = trie.count;
    // Renumbered breadth first: a node's children get consecutive numbers, and a node comes after its suffixes' nodes.
    const order = new Int32Array(count);
    const renumbered = new Int32Array(count);
    let tail = 1;
    for (let head = 0; head < tail; head++) {
      const old = order[head] as number;
      renumbered[old] = head;
      for (let child = trie.firstChild[old] as number; child >= 0; child = trie.nextSibling[child] as number) {
        order[tail++] = child;
      }
    }
    this.#childStart = new Int32Array(count);
    this.#childCount = new Int32Array(count);
    this.#char = new Uint16Array(count);
    this.#fail = new Int32Array(count);
    this.#depth = new Int32Array(count);
    this.#matchLength = new Int32Array(count);
    const parent = new Int32Array(count);
    for (let node = 0; node < count; node++) {
      const old = order[node] as number;
      this.#char[node] = trie.char[old] as number;
      this.#depth[node] = trie.depth[old] as number;
      const first = trie.firstChild[old] as number;
      if (first < 0) continue;
      this.#childStart[node] = renumbered[first] as number;
      let children = 0;
      for (let child = first; child >= 0; child = trie.nextSibling[child] as number) {
        parent[renumbered[child] as number] = node;
        children++;
      }
      this.#childCount[node] = children;
    }
    for (let node = 1; node < count; node++) {
      const from = parent[node] as number;
      this.#fail[node] = from === 0 ? 0 : this.next(this.#fail[from] as number, this.#char[node] as number);
      const old = order[node] as number;
      this.#matchLength[node] =
        trie.isEnd[old] === 1
          ? (this.#depth[node] as number)
          : (this.#matchLength[this.#fail[node] as number] as number);
    }
  }

  /** The state after `state` reads the code unit `char`. Amortised constant: each fall back shortens the text held. */
  next(state: number, char: number): number {
    let node = state;
    for (;;) {
      const child = this.#child(node, char);
      if (child >= 0) return child;
      if (node === 0) return 0;
      node = this.#fail[node] as number;
    }
  }

  /** How many of the last characters read may still begin a sequence: the text to hold back. */
  heldLength(state: number): number {
    return this.#depth[state] as number;
  }

  /** The longest sequence the text read so far ends with, by its length (0: none). */
  matchLength(state: number): number {
    return this.#matchLength[state] as number;
  }

  /** The child of `node` on `char`, or -1 (binary search: a node may have thousands of children). */
  #child(node: number, char: number): number {
    let low = this.#childStart[node] as number;
    let high = low + (this.#childCount[node] as number) - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const at = this.#char[middle] as number;
      if (at === char) return middle;
      if (at < char) low = middle + 1;
      else high = middle - 1;
    }
    return -1;
  }
}

interface Trie {
  readonly count: number;
  readonly firstChild: Int32Array;
  readonly nextSibling: Int32Array;
  readonly char: Uint16Array;
  readonly depth: Int32Array;
  readonly isEnd: Uint8Array;
}

/**
 * The trie of `sequences`, built from them sorted: each one shares with the one before exactly the path of their common
 * prefix, so no child is ever looked up while building, and each node's children are added in increasing order.
 */
function buildTrie(sequences: readonly string[]): Trie {
  // Sorted by UTF-16 code units (the default order), as the automaton compares them.
  const sorted = [...sequences].sort();
  let size = 1;
  for (const sequence of sorted) size += sequence.length;
  const firstChild = new Int32Array(size).fill(-1);
  const lastChild = new Int32Array(size).fill(-1);
  const nextSibling = new Int32Array(size).fill(-1);
  const char = new Uint16Array(size);
  const depth = new Int32Array(size);
  const isEnd = new Uint8Array(size);
  let count = 1;
  const path = [0];
  let previous = "";
  for (const sequence of sorted) {
    let common = 0;
    const shared = Math.min(previous.length, sequence.length);
    while (common < shared && previous.charCodeAt(common) === sequence.charCodeAt(common)) common++;
    let node = path[common] as number;
    for (let at = common; at < sequence.length; at++) {
      const child = count++;
      char[child] = sequence.charCodeAt(at);
      depth[child] = at + 1;
      const last = lastChild[node] as number;
      if (last < 0) firstChild[node] = child;
      else nextSibling[last] = child;
      lastChild[node] = child;
      path[at + 1] = child;
      node = child;
    }
    isEnd[node] = 1;
    previous = sequence;
  }
  return { count, firstChild, nextSibling, char, depth, isEnd };
}
