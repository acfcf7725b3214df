/**
 * Max-heap of candidate BPE merges in parallel typed arrays (no per-entry objects). Order: higher score first; on
 * equal scores the leftmost pair (smaller left symbol index), as SentencePiece breaks ties.
 */
export class SymbolPairHeap {
  private score = new Float64Array(1024);
  private left = new Int32Array(1024);
  private right = new Int32Array(1024);
  /** Length (UTF-16 units) of the merged piece when queued; a different length later means the entry is stale. */
  private length = new Int32Array(1024);
  size = 0;

  clear(): void {
    this.size = 0;
  }

  get topLeft(): number {
    return this.left[0];
  }
  get topRight(): number {
    return this.right[0];
  }
  get topLength(): number {
    return this.length[0];
  }

  push(score: number, left: number, right: number, length: number): void {
    if (this.size === this.score.length) this.grow();
    let i = this.size++;
    // Sift up: move parents that rank lower than the new entry down.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(score, left, parent)) break;
      this.copy(parent, i);
      i = parent;
    }
    this.set(i, score, left, right, length);
  }

  /** Remove the top entry. */
  pop(): void {
    const last = --this.size;
    if (last === 0) return;
    const score = this.score[last], left = this.left[last], right = this.right[last], length = this.length[last];
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= last) break;
      if (child + 1 < last && this.before(this.score[child + 1], this.left[child + 1], child)) child++;
      if (!this.before(this.score[child], this.left[child], last)) break;
      this.copy(child, i);
      i = child;
    }
    this.set(i, score, left, right, length);
  }

  /** Whether (score, left) ranks above entry j. */
  private before(score: number, left: number, j: number): boolean {
    const s = this.score[j];
    return score > s || (score === s && left < this.left[j]);
  }

  private copy(from: number, to: number): void {
    this.score[to] = this.score[from];
    this.left[to] = this.left[from];
    this.right[to] = this.right[from];
    this.length[to] = this.length[from];
  }

  private set(i: number, score: number, left: number, right: number, length: number): void {
    this.score[i] = score;
    this.left[i] = left;
    this.right[i] = right;
    this.length[i] = length;
  }

  private grow(): void {
    const size = this.score.length * 2;
    const grow = <T extends Float64Array | Int32Array>(a: T, b: T): T => (b.set(a), b);
    this.score = grow(this.score, new Float64Array(size));
    this.left = grow(this.left, new Int32Array(size));
    this.right = grow(this.right, new Int32Array(size));
    this.length = grow(this.length, new Int32Array(size));
  }
}
