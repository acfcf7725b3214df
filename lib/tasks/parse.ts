/**
 * Parsers for what PaliGemma writes for `detect` and `segment` prompts. Pure functions on text, so they
 * work on output from any source (this package, another runtime, a log file).
 *
 * Grammar (one object per `;`-separated piece):
 *   detect:  <locY0><locX0><locY1><locX1> label
 *   segment: <locY0><locX0><locY1><locX1><seg…>×16 label
 * A `<locNNNN>` value v ∈ 0..1023 stands for v/1024 of the model's square input. The input was the whole
 * image squashed to a square (no padding, no crop), so y = v/1024 · height and x = v/1024 · width in
 * pixels of the original image (after EXIF orientation). (big_vision's segmentation data encodes
 * round(y · 1023) and its evaluator divides by 1023; the two readings differ by under 0.1% of the size.)
 *
 * Tolerance: a piece that does not fit the grammar (missing or extra tokens, out-of-range values, a
 * stray token inside the label) is skipped and reported in `skipped` with the reason; nothing in the
 * text makes these functions throw. Whitespace-only pieces (a trailing `;`, empty output) are ignored.
 */
import { TaskError } from './errors.js';

/** Size of the original image, in pixels. */
export interface ImageSize {
  width: number;
  height: number;
}

/**
 * A box in pixels of the original image, as fractional coordinates: 0 ≤ x0 ≤ x1 ≤ width and
 * 0 ≤ y0 ≤ y1 ≤ height. (x0, y0) is the top-left corner.
 */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** One detected object. The label is the model's, trimmed (it may be empty if the output was cut short). */
export interface Detection {
  label: string;
  box: Box;
}

/** A piece of the output that was not an object, and why. */
export interface SkippedObject {
  /** The piece, trimmed. */
  text: string;
  reason: string;
}

/** What {@link parseDetections} returns. */
export interface DetectionParse {
  detections: Detection[];
  skipped: SkippedObject[];
}

/** One segmented object: its box and the 16 mask codes (0..127) for the mask decoder. */
export interface SegmentedObject extends Detection {
  codes: number[];
}

/** What {@link parseSegmentation} returns. */
export interface SegmentationParse {
  segments: SegmentedObject[];
  skipped: SkippedObject[];
}

/** Location tokens per box, their number of bins, and mask codes per object. */
const LOC_TOKENS = 4;
const LOC_BINS = 1024;
export const SEG_TOKENS = 16;
const SEG_CODES = 128;

const LOC = /\s*<loc(\d{4})>/y;
const SEG = /\s*<seg(\d{3})>/y;
const STRAY_TOKEN = /<(?:loc|seg)\d*>/;

/**
 * Boxes and labels from the output of a `detect` prompt. `<seg…>` tokens after a box are ignored, so
 * the boxes of `segment` output can be read with this too.
 */
export function parseDetections(text: string, size: ImageSize): DetectionParse {
  const { width, height } = checkSize(text, size);
  const detections: Detection[] = [];
  const skipped: SkippedObject[] = [];
  for (const piece of pieces(text)) {
    const o = parsePiece(piece);
    const reason = o.reason ?? locReason(o.locs);
    if (reason) skipped.push({ text: piece, reason });
    else detections.push({ label: o.label, box: toBox(o.locs, width, height) });
  }
  return { detections, skipped };
}

/** Boxes, mask codes and labels from the output of a `segment` prompt. */
export function parseSegmentation(text: string, size: ImageSize): SegmentationParse {
  const { width, height } = checkSize(text, size);
  const segments: SegmentedObject[] = [];
  const skipped: SkippedObject[] = [];
  for (const piece of pieces(text)) {
    const o = parsePiece(piece);
    const reason = o.reason ?? locReason(o.locs) ?? segReason(o.segs);
    if (reason) skipped.push({ text: piece, reason });
    else segments.push({ label: o.label, box: toBox(o.locs, width, height), codes: o.segs });
  }
  return { segments, skipped };
}

function checkSize(text: unknown, size: ImageSize): ImageSize {
  if (typeof text !== 'string') throw new TaskError('BAD_OPTION', `the text to parse must be a string, got ${typeof text}`);
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
  if (typeof size !== 'object' || size === null || !ok(size.width) || !ok(size.height))
    throw new TaskError('BAD_OPTION', `{ width, height } must be positive numbers (the original image size), got ${JSON.stringify(size)}`);
  return size;
}

function* pieces(text: string): Generator<string> {
  for (const raw of text.split(';')) {
    const piece = raw.trim();
    if (piece !== '') yield piece;
  }
}

interface Piece {
  locs: number[];
  segs: number[];
  label: string;
  /** Set when the piece cannot be an object whatever the task. */
  reason?: string;
}

/** Leading `<loc>` tokens, then `<seg>` tokens, then the label. */
function parsePiece(piece: string): Piece {
  let pos = 0;
  const run = (re: RegExp): number[] => {
    const values: number[] = [];
    re.lastIndex = pos;
    for (let m = re.exec(piece); m; m = re.exec(piece)) {
      values.push(Number(m[1]));
      pos = re.lastIndex;
    }
    return values;
  };
  const locs = run(LOC);
  const segs = run(SEG);
  const label = piece.slice(pos).trim();
  const stray = STRAY_TOKEN.exec(label);
  const reason = stray ? `a stray ${stray[0]} token inside the label` : undefined;
  return { locs, segs, label, reason: locs.length === 0 ? 'no <loc> tokens' : reason };
}

function locReason(locs: number[]): string | undefined {
  if (locs.length !== LOC_TOKENS) return `expected ${LOC_TOKENS} <loc> tokens, found ${locs.length}`;
  const bad = locs.find((v) => v >= LOC_BINS);
  return bad === undefined ? undefined : `<loc${String(bad).padStart(4, '0')}> is out of range (0..${LOC_BINS - 1})`;
}

function segReason(segs: number[]): string | undefined {
  if (segs.length !== SEG_TOKENS) return `expected ${SEG_TOKENS} <seg> tokens, found ${segs.length}`;
  const bad = segs.find((v) => v >= SEG_CODES);
  return bad === undefined ? undefined : `<seg${String(bad).padStart(3, '0')}> is out of range (0..${SEG_CODES - 1})`;
}

/** [ymin, xmin, ymax, xmax] bins → an ordered box in original pixels, clamped to the image. */
function toBox(locs: number[], width: number, height: number): Box {
  const [a, b, c, d] = locs as [number, number, number, number];
  const scale = (v: number, size: number) => Math.min(size, Math.max(0, (v / LOC_BINS) * size));
  return {
    x0: scale(Math.min(b, d), width),
    y0: scale(Math.min(a, c), height),
    x1: scale(Math.max(b, d), width),
    y1: scale(Math.max(a, c), height),
  };
}
