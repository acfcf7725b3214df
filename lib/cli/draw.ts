/**
 * `--draw`: renders detections and masks onto the image the model saw (EXIF orientation applied,
 * alpha flattened onto white), at its original size. Masks are a translucent colour layer, boxes and
 * labels an SVG overlay; sharp composites both and encodes by the output file's extension.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

import { UsageError } from './args.js';
import type { Box } from '../tasks/parse.js';

/** One object to draw; `mask` (width × height, non-zero inside) is drawn when present. */
export interface DrawObject {
  label: string;
  box: Box;
  mask?: Uint8Array;
}

/** Distinct colours that read on light and dark photos; a label keeps its colour across images. */
const PALETTE: readonly [number, number, number][] = [
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
  [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
];

/** Opacity of the mask layer (0..255): the object stays visible under its colour. */
const MASK_ALPHA = 110;

/** File types `--draw` can write, by extension. */
const DRAW_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp'];

/** The file name of an image without extension, for `{name}` in --draw patterns (`-` is stdin). */
const stem = (image: string) => (image === '-' ? 'stdin' : path.basename(image, path.extname(image)));

/**
 * Where `--draw OUT` writes each image's drawing: OUT itself for one image; `OUT/<name>.png` when OUT
 * is a directory (existing, or ending in a slash); OUT with `{name}` replaced by each image's file
 * name without extension. Checked before any work, so a bad OUT costs no model run.
 */
export function drawTargets(draw: string, images: readonly string[]): string[] {
  const isDir = draw.endsWith('/') || draw.endsWith(path.sep) || (existsSync(draw) && statSync(draw).isDirectory());
  let targets: string[];
  if (isDir) targets = images.map((image) => path.join(draw, `${stem(image)}.png`));
  else if (draw.includes('{name}')) targets = images.map((image) => draw.replaceAll('{name}', stem(image)));
  else if (images.length > 1) throw new UsageError('--draw needs a directory or a pattern with {name} when there are several images');
  else targets = [draw];
  const seen = new Set<string>();
  for (const t of targets) {
    if (!DRAW_EXTENSIONS.includes(path.extname(t).toLowerCase()))
      throw new UsageError(`--draw writes ${DRAW_EXTENSIONS.join(', ')} files, not ${t}`);
    if (seen.has(path.resolve(t))) throw new UsageError(`--draw would write ${t} twice (two images with the same name); use a pattern with {name} in distinct directories`);
    seen.add(path.resolve(t));
  }
  return targets;
}

/** The palette colour of a label (a small string hash, so the same label gets the same colour). */
export function labelColour(label: string): [number, number, number] {
  let h = 0;
  for (let i = 0; i < label.length; i++) h = (h * 31 + label.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length]!;
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Text safe inside SVG markup (labels come from the model and may hold anything). */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

/** Width of a label's text, estimated (SVG cannot measure): sans-serif glyphs average ~0.6 em. */
const textWidth = (text: string, font: number) => Math.ceil(0.6 * font * [...text].length);

/** The SVG of the boxes and their labels (a tag in the box's colour) for a width × height image. */
export function overlaySvg(objects: readonly DrawObject[], width: number, height: number): string {
  const line = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(10, Math.round(Math.min(width, height) / 32));
  const tagHeight = Math.round(font * 1.3);
  const parts = objects.map(({ label, box }) => {
    const [r, g, b] = labelColour(label);
    const colour = `rgb(${r},${g},${b})`;
    const ink = 0.299 * r + 0.587 * g + 0.114 * b > 140 ? 'black' : 'white';
    const x = Math.min(box.x0, box.x1);
    const y = Math.min(box.y0, box.y1);
    const w = Math.abs(box.x1 - box.x0);
    const h = Math.abs(box.y1 - box.y0);
    const text = label || '?';
    // The tag sits on the box's top edge, outside it unless the box touches the image's top.
    const tagY = y >= tagHeight ? y - tagHeight : y;
    return (
      `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="${colour}" stroke-width="${line}"/>` +
      `<rect x="${x}" y="${tagY}" width="${textWidth(text, font) + 2 * line}" height="${tagHeight}" fill="${colour}"/>` +
      `<text x="${x + line}" y="${tagY + font}" font-family="sans-serif" font-size="${font}" fill="${ink}">${escapeXml(text)}</text>`
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** An RGBA layer holding every mask in its label's colour, or undefined when there is no mask. */
export function maskLayer(objects: readonly DrawObject[], width: number, height: number): Buffer | undefined {
  const withMask = objects.filter((o) => o.mask);
  if (withMask.length === 0) return undefined;
  const layer = Buffer.alloc(width * height * 4);
  for (const { label, mask } of withMask) {
    if (mask!.length !== width * height) throw new Error(`internal: a mask of ${mask!.length} pixels for a ${width} × ${height} image`);
    const [r, g, b] = labelColour(label);
    for (let i = 0; i < mask!.length; i++) {
      if (mask![i] === 0) continue;
      layer[4 * i] = r;
      layer[4 * i + 1] = g;
      layer[4 * i + 2] = b;
      layer[4 * i + 3] = MASK_ALPHA;
    }
  }
  return layer;
}

/**
 * Draws `objects` on `image` (encoded bytes) and writes the result to `out` (PNG, JPEG or WebP by
 * extension), creating its directory. Returns the size written, which is the image's own size.
 */
export async function drawObjects(image: Buffer, objects: readonly DrawObject[], out: string): Promise<{ width: number; height: number }> {
  const { data, info } = await sharp(image).rotate().flatten({ background: '#ffffff' }).raw().toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  const layers: sharp.OverlayOptions[] = [];
  const masks = maskLayer(objects, width, height);
  if (masks) layers.push({ input: masks, raw: { width, height, channels: 4 } });
  if (objects.length > 0) layers.push({ input: Buffer.from(overlaySvg(objects, width, height)) });
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  await sharp(data, { raw: { width, height, channels } }).composite(layers).toFile(out);
  return { width, height };
}
