/**
 * Longest-match lookup of the pieces taken whole from text (user-defined ones, and control/unknown ones when
 * special parsing is on), for every position of a text in one pass.
 *
 * An Aho–Corasick automaton over the *reversed* pieces, run over the text from its end: after reading
 * text[i], text[i+1]… backwards, the state is the longest prefix of text[i..] that ends some piece, and the longest
 * piece starting at i is on its suffix-link chain — precomputed per state. Each step either descends one node or
 * follows suffix links that it paid for earlier, so a scan is linear in the text whatever the pieces. (Walking a
 * trie from every position was O(text × longest piece): a 20,000-character piece made a 200 KB prompt take 64 s.)
 *
 * Nodes are numbered in insertion order; edges live in one open-addressing table keyed by (node, code unit) with a
 * random hash base, so no set of pieces makes lookups slow.
 */
import { mix, randomBase, reduce } from './hash.js';

export class PieceMatcher {
  private readonly base = randomBase();
  /** Per node: depth (= length of the piece text it spells), id of the piece ending there or -1. */
  private depth: number[] = [0];
  private terminal: number[] = [-1];
  /** Per node: first child and next sibling (for the breadth-first pass of `build`). */
  private firstChild: number[] = [-1];
  private nextSibling: number[] = [-1];
  private edgeCode: number[] = [0];
  /** Edge table: per slot the parent node, the code unit, and the child (-1 when empty). */
  private edgeParent = new Int32Array(2048);
  private edgeUnit = new Int32Array(2048);
  private edgeChild = new Int32Array(2048).fill(-1);
  private edges = 0;
  /** Code units occurring anywhere in a piece: any other unit sends the automaton back to the root. */
  private readonly used = new Uint8Array(65536);
  /** Per node, after `build`: suffix link, and the node of the longest allowed piece on its chain (-1: none). */
  private fail = new Int32Array(0);
  /** After `build`: the root's child per code unit (-1: none), and per node whether it has children at all. */
  private rootChild = new Int32Array(0);
  private hasChildren = new Uint8Array(0);
  private bestUser = new Int32Array(0);
  private bestAny = new Int32Array(0);
  private hasUser = false;

  /** Number of nodes: one more than the code units of all pieces added, at most. */
  get size(): number {
    return this.depth.length;
  }

  /** Add a piece (before `build`). When two ids spell the same text, the first one added is kept. */
  add(piece: string, id: number): void {
    if (piece.length === 0) return; // an empty piece can never be matched
    let node = 0;
    for (let i = piece.length - 1; i >= 0; i--) {
      const unit = piece.charCodeAt(i);
      this.used[unit] = 1;
      let child = this.child(node, unit);
      if (child < 0) child = this.addChild(node, unit);
      node = child;
    }
    if (this.terminal[node] < 0) this.terminal[node] = id;
  }

  /**
   * Compute suffix links and, per node, the longest piece ending the node's text that may be matched: with
   * `types[id]` user-defined always, any piece added when special parsing is on.
   */
  build(types: Int32Array, userDefined: number): void {
    const n = this.size;
    const fail = (this.fail = new Int32Array(n));
    const bestUser = (this.bestUser = new Int32Array(n).fill(-1));
    const bestAny = (this.bestAny = new Int32Array(n).fill(-1));
    this.rootChild = new Int32Array(65536).fill(-1);
    for (let child = this.firstChild[0]; child >= 0; child = this.nextSibling[child]) this.rootChild[this.edgeCode[child]] = child;
    this.hasChildren = Uint8Array.from(this.firstChild, (c) => (c >= 0 ? 1 : 0));
    // Breadth first: a node's suffix link is shallower, so it is complete when the node is reached.
    const queue = new Int32Array(n);
    let head = 0, tail = 0;
    queue[tail++] = 0;
    while (head < tail) {
      const node = queue[head++];
      const id = this.terminal[node];
      if (node !== 0) {
        bestAny[node] = id >= 0 ? node : bestAny[fail[node]];
        bestUser[node] = id >= 0 && types[id] === userDefined ? node : bestUser[fail[node]];
        if (bestUser[node] >= 0) this.hasUser = true;
      }
      for (let child = this.firstChild[node]; child >= 0; child = this.nextSibling[child]) {
        const unit = this.edgeCode[child];
        let f = node === 0 ? -1 : fail[node];
        let link = 0;
        for (; f >= 0; f = f === 0 ? -1 : fail[f]) {
          const next = this.child(f, unit);
          if (next >= 0) {
            link = next;
            break;
          }
        }
        fail[child] = link;
        queue[tail++] = child;
      }
    }
  }

  /**
   * For every position i of `text`, the length of the longest allowed piece starting there (0 if none) into
   * `lengths[i]`, and its id into `ids[i]` when there is one. Returns false, filling nothing, when no piece can
   * match at all in this mode.
   */
  scan(text: string, parseSpecial: boolean, lengths: Int32Array, ids: Int32Array): boolean {
    if (!(parseSpecial ? this.size > 1 : this.hasUser)) return false;
    const best = parseSpecial ? this.bestAny : this.bestUser;
    const { used, fail, depth, terminal, rootChild, hasChildren } = this;
    let state = 0;
    for (let i = text.length - 1; i >= 0; i--) {
      const unit = text.charCodeAt(i);
      if (used[unit] === 0) {
        state = 0;
        lengths[i] = 0;
        continue;
      }
      // Follow suffix links until a node has an edge for the unit; the root's edges are a table lookup.
      let next = -1;
      while (state !== 0) {
        if (hasChildren[state] === 1 && (next = this.child(state, unit)) >= 0) break;
        state = fail[state];
      }
      state = state !== 0 ? next : Math.max(0, rootChild[unit]);
      const b = best[state];
      if (b < 0) lengths[i] = 0;
      else {
        lengths[i] = depth[b];
        ids[i] = terminal[b];
      }
    }
    return true;
  }

  private slotOf(node: number, unit: number): number {
    return mix(reduce(node * this.base + unit)) & (this.edgeChild.length - 1);
  }

  private child(node: number, unit: number): number {
    const mask = this.edgeChild.length - 1;
    for (let slot = this.slotOf(node, unit); ; slot = (slot + 1) & mask) {
      const child = this.edgeChild[slot];
      if (child < 0 || (this.edgeParent[slot] === node && this.edgeUnit[slot] === unit)) return child;
    }
  }

  private addChild(node: number, unit: number): number {
    const child = this.depth.length;
    this.depth.push(this.depth[node] + 1);
    this.terminal.push(-1);
    this.edgeCode.push(unit);
    this.nextSibling.push(this.firstChild[node]);
    this.firstChild[node] = child;
    this.firstChild.push(-1);
    if (2 * (this.edges + 1) > this.edgeChild.length) this.growEdges();
    this.insertEdge(node, unit, child);
    this.edges++;
    return child;
  }

  private insertEdge(node: number, unit: number, child: number): void {
    const mask = this.edgeChild.length - 1;
    let slot = this.slotOf(node, unit);
    while (this.edgeChild[slot] >= 0) slot = (slot + 1) & mask;
    this.edgeParent[slot] = node;
    this.edgeUnit[slot] = unit;
    this.edgeChild[slot] = child;
  }

  private growEdges(): void {
    const { edgeParent, edgeUnit, edgeChild } = this;
    this.edgeParent = new Int32Array(edgeChild.length * 2);
    this.edgeUnit = new Int32Array(edgeChild.length * 2);
    this.edgeChild = new Int32Array(edgeChild.length * 2).fill(-1);
    for (let slot = 0; slot < edgeChild.length; slot++) {
      if (edgeChild[slot] >= 0) this.insertEdge(edgeParent[slot], edgeUnit[slot], edgeChild[slot]);
    }
  }
}
