/**
 * Longest-match lookup of the pieces taken whole from text (user-defined ones, and control/unknown ones when
 * special parsing is on), for every position of a text in one pass.
 *
 * An Aho–Corasick automaton over the *reversed* pieces, run over the text from its end: after reading
 * text[i], text[i+1]… backwards, the state stands for the longest prefix of text[i..] that is a suffix of some piece,
 * and the longest piece starting at i is on its suffix-link chain — precomputed per state. Each step either descends one node or
 * follows suffix links that it paid for earlier, so a scan is linear in the text whatever the pieces. (Walking a
 * trie from every position was O(text × longest piece): a 20,000-character piece made a 200 KB prompt take 64 s.)
 *
 * Nodes are numbered in insertion order; edges live in one open-addressing table keyed by (node, code unit) with a
 * random hash base, so no set of pieces makes lookups slow.
 */
import { mix, randomBase, reduce } from './hash.js';

export class PieceMatcher {
  private readonly base = randomBase();
  /** Per node (the root is 0): depth (= length of the text it spells), id of the piece ending there or -1. */
  private readonly depth: Int32Array;
  private readonly terminal: Int32Array;
  /** Per node: first child, next sibling and the unit on the edge into it (for the breadth-first pass). */
  private readonly firstChild: Int32Array;
  private readonly nextSibling: Int32Array;
  private readonly edgeUnit: Int32Array;
  private nodes = 1;
  /** Edge table, at most half full: per slot the parent node, the code unit, and the child (-1 when empty). */
  private readonly slotParent: Int32Array;
  private readonly slotUnit: Int32Array;
  private readonly slotChild: Int32Array;
  /** Code units occurring anywhere in a piece: any other unit sends the automaton back to the root. */
  private readonly used = new Uint8Array(65536);
  /** Per node: suffix link, and the node of the longest allowed piece on its chain (-1: none). */
  private readonly fail: Int32Array;
  private readonly bestUser: Int32Array;
  private readonly bestAny: Int32Array;
  /** The root's child per code unit (-1: none), and per node whether it has children at all. */
  private readonly rootChild = new Int32Array(65536).fill(-1);
  private readonly hasChildren: Uint8Array;
  private hasUser = false;

  /**
   * An automaton for `pieces[i]` with id `ids[i]` (empty pieces are skipped; of two ids spelling the same text the
   * first is kept). Which may be matched: with `types[id] === userDefined` always, any of them with special parsing.
   */
  constructor(pieces: string[], ids: number[], types: Int32Array, userDefined: number) {
    let units = 0;
    for (const piece of pieces) units += piece.length;
    const maxNodes = units + 1;
    this.depth = new Int32Array(maxNodes);
    this.terminal = new Int32Array(maxNodes).fill(-1);
    this.firstChild = new Int32Array(maxNodes).fill(-1);
    this.nextSibling = new Int32Array(maxNodes).fill(-1);
    this.edgeUnit = new Int32Array(maxNodes);
    let capacity = 16;
    while (capacity < 2 * maxNodes) capacity *= 2;
    this.slotParent = new Int32Array(capacity);
    this.slotUnit = new Int32Array(capacity);
    this.slotChild = new Int32Array(capacity).fill(-1);
    for (let i = 0; i < pieces.length; i++) this.add(pieces[i], ids[i]);
    this.fail = new Int32Array(this.nodes);
    this.bestUser = new Int32Array(this.nodes).fill(-1);
    this.bestAny = new Int32Array(this.nodes).fill(-1);
    this.hasChildren = new Uint8Array(this.nodes);
    for (let node = 0; node < this.nodes; node++) this.hasChildren[node] = this.firstChild[node] >= 0 ? 1 : 0;
    for (let child = this.firstChild[0]; child >= 0; child = this.nextSibling[child]) this.rootChild[this.edgeUnit[child]] = child;
    this.link(types, userDefined);
  }

  /** Inserts the reversed piece into the trie. */
  private add(piece: string, id: number): void {
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

  /** Suffix links and, per node, the longest piece ending the node's text that may be matched in each mode. */
  private link(types: Int32Array, userDefined: number): void {
    const { fail, bestUser, bestAny, terminal } = this;
    // Breadth first: a node's suffix link is shallower, so it is complete when the node is reached.
    const queue = new Int32Array(this.nodes);
    let head = 0, tail = 0;
    queue[tail++] = 0;
    while (head < tail) {
      const node = queue[head++];
      const id = terminal[node];
      if (node !== 0) {
        bestAny[node] = id >= 0 ? node : bestAny[fail[node]];
        bestUser[node] = id >= 0 && types[id] === userDefined ? node : bestUser[fail[node]];
        if (bestUser[node] >= 0) this.hasUser = true;
      }
      for (let child = this.firstChild[node]; child >= 0; child = this.nextSibling[child]) {
        const unit = this.edgeUnit[child];
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
    if (!(parseSpecial ? this.nodes > 1 : this.hasUser)) return false;
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
    return mix(reduce(node * this.base + unit)) & (this.slotChild.length - 1);
  }

  private child(node: number, unit: number): number {
    const mask = this.slotChild.length - 1;
    for (let slot = this.slotOf(node, unit); ; slot = (slot + 1) & mask) {
      const child = this.slotChild[slot];
      if (child < 0 || (this.slotParent[slot] === node && this.slotUnit[slot] === unit)) return child;
    }
  }

  private addChild(node: number, unit: number): number {
    const child = this.nodes++;
    this.depth[child] = this.depth[node] + 1;
    this.edgeUnit[child] = unit;
    this.nextSibling[child] = this.firstChild[node];
    this.firstChild[node] = child;
    const mask = this.slotChild.length - 1;
    let slot = this.slotOf(node, unit);
    while (this.slotChild[slot] >= 0) slot = (slot + 1) & mask;
    this.slotParent[slot] = node;
    this.slotUnit[slot] = unit;
    this.slotChild[slot] = child;
    return child;
  }
}
