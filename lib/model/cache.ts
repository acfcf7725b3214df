/**
 * A least-recently-used cache bounded by bytes, for vision-tower outputs: asking several questions
 * about one image runs the tower once.
 */
import { createHash } from 'node:crypto';

export class ByteLru<V extends { byteLength: number }> {
  readonly #map = new Map<string, V>(); // iteration order = recency, oldest first
  #bytes = 0;

  /** `maxBytes` = 0 disables the cache. */
  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    if (value.byteLength > this.maxBytes) return;
    const old = this.#map.get(key);
    if (old !== undefined) {
      this.#bytes -= old.byteLength;
      this.#map.delete(key);
    }
    this.#map.set(key, value);
    this.#bytes += value.byteLength;
    for (const [k, v] of this.#map) {
      if (this.#bytes <= this.maxBytes) break;
      this.#map.delete(k);
      this.#bytes -= v.byteLength;
    }
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }
}

/** Cache key of an image: a hash of the exact pixel values the vision tower would see. */
export function pixelKey(pixelValues: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(pixelValues.buffer, pixelValues.byteOffset, pixelValues.byteLength))
    .digest('base64');
}
