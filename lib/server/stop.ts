/**
 * Stop sequences (`stop` in both APIs): generated text is let through as it arrives, except for a
 * tail that could still turn into a stop sequence, which is held back until the next piece decides.
 * A stop sequence itself is never emitted.
 */
export class StopMatcher {
  readonly #stops: string[];
  #held = '';
  #stopped = false;

  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
  }

  /** Whether a stop sequence has appeared (everything after it is dropped). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Adds a generated piece and returns the text that can be emitted now. */
  push(piece: string): string {
    if (this.#stopped) return '';
    const text = this.#held + piece;
    let cut = -1;
    for (const s of this.#stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.#stopped = true;
      this.#held = '';
      return text.slice(0, cut);
    }
    // Hold back the longest tail of the text that begins some stop sequence.
    let hold = 0;
    for (const s of this.#stops) {
      for (let k = Math.min(s.length - 1, text.length); k > hold; k--) {
        if (text.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    this.#held = text.slice(text.length - hold);
    return text.slice(0, text.length - hold);
  }

  /** The held-back tail, at the end of generation (nothing once stopped). */
  flush(): string {
    const rest = this.#held;
    this.#held = '';
    return rest;
  }
}
