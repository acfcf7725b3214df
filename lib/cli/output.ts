/**
 * How task results are written: plain lines for people, one JSON object per image for programs.
 * Pure functions, so the formats are easy to test and to document.
 */
import type { GenerationResult } from '../model/paligemma.js';
import type { Box, Detection, SkippedObject } from '../tasks/parse.js';
import type { SegmentMask } from '../tasks/segmentation.js';

/**
 * A binary mask as run lengths over its pixels in row-major order (left to right, top to bottom),
 * alternating 0-runs and 1-runs and starting with a 0-run (which is 0 when the first pixel is set).
 * Unlike COCO's RLE, which runs column by column, this is the order of the mask bytes.
 */
export interface MaskRle {
  width: number;
  height: number;
  order: 'row-major';
  counts: number[];
}

/** Run-length encodes a width × height mask (non-zero = inside). */
export function maskToRle(mask: Uint8Array, width: number, height: number): MaskRle {
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i] !== 0 ? 1 : 0;
    if (v !== current) {
      counts.push(run);
      current = v;
      run = 0;
    }
    run++;
  }
  counts.push(run);
  return { width, height, order: 'row-major', counts };
}

/** Pixels inside a mask. */
export function maskArea(mask: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) n++;
  return n;
}

/** `[x0, y0, x1, y1]` in whole pixels, for people (JSON keeps the exact values). */
export function formatBox(box: Box): string {
  return `[${[box.x0, box.y0, box.x1, box.y1].map((v) => Math.round(v)).join(', ')}]`;
}

/** The plain output of a detection: `label  [x0, y0, x1, y1]`. */
export function formatDetection(d: Detection): string {
  return `${d.label || '(no label)'}  ${formatBox(d.box)}`;
}

/** The plain output of a segmented object: `label  [x0, y0, x1, y1]  N px`. */
export function formatSegment(s: SegmentMask): string {
  return `${formatDetection(s)}  ${maskArea(s.mask)} px`;
}

/** What the model produced for one image, as the JSON line `--json` prints. */
export interface JsonResult {
  image: string;
  width?: number;
  height?: number;
  prompt: string;
  /** The raw model output (with `<loc…>`/`<seg…>` tokens for detect and segment). */
  text: string;
  tokens: number[];
  stopReason: GenerationResult['stopReason'];
  timings: GenerationResult['timings'];
  detections?: Detection[];
  segments?: (Omit<SegmentMask, 'mask'> & { area: number; mask: MaskRle })[];
  /** Parts of the output that were not a well-formed object, and why (detect, segment). */
  skipped?: SkippedObject[];
}

/** The JSON line of one image's result; `parsed` holds the detections or segments, if any. */
export function jsonResult(
  image: string,
  prompt: string,
  r: GenerationResult,
  parsed: { detections?: Detection[]; segments?: SegmentMask[]; skipped?: SkippedObject[] } = {},
): JsonResult {
  const out: JsonResult = {
    image,
    width: r.image?.width,
    height: r.image?.height,
    prompt,
    text: r.text,
    tokens: r.tokens,
    stopReason: r.stopReason,
    timings: r.timings,
  };
  if (parsed.detections) out.detections = parsed.detections;
  if (parsed.segments) {
    const { width, height } = r.image!;
    out.segments = parsed.segments.map(({ mask, ...s }) => ({ ...s, area: maskArea(mask), mask: maskToRle(mask, width, height) }));
  }
  if (parsed.skipped) out.skipped = parsed.skipped;
  return out;
}

/** The JSON line of an image that failed (bad file, undecodable image), so every image gets a line. */
export function jsonFailure(image: string, err: Error): { image: string; error: { name: string; code?: string; message: string } } {
  return { image, error: { name: err.name, code: (err as { code?: string }).code, message: err.message } };
}
