/**
 * Reads the vocabulary of a SentencePiece `tokenizer.model` (a serialized `ModelProto`) with a minimal
 * protobuf decoder: only `ModelProto.pieces` (field 1, repeated `SentencePiece`) is read, with
 * `SentencePiece.piece` (1, string), `.score` (2, float) and `.type` (3, enum); every other field is
 * skipped by wire type. Every length is checked against the buffer, so corrupt input ends in a
 * ConvertError, never an over-read or a huge allocation.
 */
import { ConvertError } from './errors.js';
import { TokenType } from '../tokenizer/vocab-types.js';
import type { VocabTable } from '../tokenizer/vocab-types.js';

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** A cursor over protobuf bytes within [pos, end). */
class ProtoReader {
  constructor(
    private readonly bytes: Uint8Array,
    public pos: number,
    readonly end: number,
    private readonly file?: string,
  ) {}

  fail(message: string): never {
    throw new ConvertError('BAD_TOKENIZER', `tokenizer.model: ${message} at byte ${this.pos}`, this.file);
  }

  /** A varint as a number; values above 2^53 (never valid here) are rejected. */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.bytes[this.pos++]!;
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (result > Number.MAX_SAFE_INTEGER) this.fail('varint out of range');
        return result;
      }
      scale *= 128;
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** The bounds of a length-delimited field's payload; advances past it. */
  lengthDelimited(): [number, number] {
    const length = this.varint();
    if (length > this.end - this.pos) this.fail(`field length ${length} runs past the end`);
    const start = this.pos;
    this.pos += length;
    return [start, this.pos];
  }

  skip(wireType: number): void {
    if (wireType === WIRE_VARINT) this.varint();
    else if (wireType === WIRE_LEN) this.lengthDelimited();
    else if (wireType === WIRE_I64 || wireType === WIRE_I32) {
      const n = wireType === WIRE_I64 ? 8 : 4;
      if (n > this.end - this.pos) this.fail('truncated fixed-size field');
      this.pos += n;
    } else this.fail(`unsupported wire type ${wireType}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes one `SentencePiece` message in [start, end). */
function readPiece(bytes: Uint8Array, start: number, end: number, file?: string): { piece: string; score: number; type: number } {
  const r = new ProtoReader(bytes, start, end, file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let piece: string | undefined;
  let score = 0; // proto2 defaults
  let type: number = TokenType.NORMAL;
  while (r.pos < r.end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 1 && wire === WIRE_LEN) {
      const [a, b] = r.lengthDelimited();
      try {
        piece = utf8.decode(bytes.subarray(a, b));
      } catch {
        r.fail('piece is not valid UTF-8');
      }
    } else if (field === 2 && wire === WIRE_I32) {
      if (r.end - r.pos < 4) r.fail('truncated score');
      score = view.getFloat32(r.pos, true);
      r.pos += 4;
    } else if (field === 3 && wire === WIRE_VARINT) {
      type = r.varint();
      if (type < TokenType.NORMAL || type > TokenType.BYTE) r.fail(`unknown piece type ${type}`);
    } else r.skip(wire);
  }
  if (piece === undefined) return r.fail('a piece has no text');
  return { piece, score, type };
}

/** Reads the pieces of a SentencePiece `ModelProto`, in id order, with their exact scores and types. */
export function readSentencePieceModel(bytes: Uint8Array, file?: string): VocabTable {
  const r = new ProtoReader(bytes, 0, bytes.length, file);
  const pieces: { piece: string; score: number; type: number }[] = [];
  while (r.pos < r.end) {
    const key = r.varint();
    if (Math.floor(key / 8) === 1 && key % 8 === WIRE_LEN) {
      const [a, b] = r.lengthDelimited();
      pieces.push(readPiece(bytes, a, b, file));
    } else r.skip(key % 8);
  }
  if (pieces.length === 0) throw new ConvertError('BAD_TOKENIZER', 'tokenizer.model has no pieces', file);
  return {
    tokens: pieces.map((p) => p.piece),
    scores: Float32Array.from(pieces, (p) => p.score),
    types: Int32Array.from(pieces, (p) => p.type),
  };
}
