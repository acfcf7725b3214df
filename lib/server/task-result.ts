/**
 * Structured results of `detect …` and `segment …` prompts, in the extra `paligemma` field of a
 * response (Ollama and OpenAI clients ignore fields they do not know) and in queue job results:
 * boxes in pixels of the original image, and for segmentation the mask decoder's masks when one
 * is loaded (run-length encoded as in the CLI's --json), or the raw mask codes when not.
 */
import { maskArea, maskToRle, type MaskRle } from '../cli/output.js';
import { parseDetections, parseSegmentation, type Detection, type ImageSize, type SegmentedObject, type SkippedObject } from '../tasks/parse.js';
import { decodeSegmentation, type SegmentationDecoder } from '../tasks/segmentation.js';

/** A segmented object: box, label, the 16 mask codes and, with a mask decoder, the mask. */
export interface SegmentResult extends SegmentedObject {
  /** Pixels inside the mask (with a decoder). */
  area?: number;
  /** The mask over the whole image, run-length encoded row by row (with a decoder). */
  mask?: MaskRle;
}

/** The parsed output of a detect or segment prompt. */
export interface TaskResult {
  task: 'detect' | 'segment';
  /** Size of the original image (after EXIF orientation); boxes are in its pixels. */
  image: ImageSize;
  detections?: Detection[];
  segments?: SegmentResult[];
  /** Parts of the output that were not a well-formed object, and why. */
  skipped: SkippedObject[];
}

/** The structured result for `prompt`'s output `text`, or undefined when the prompt is not a detect/segment task. */
export async function taskResult(
  prompt: string,
  text: string,
  image: ImageSize,
  decoder: SegmentationDecoder | undefined,
): Promise<TaskResult | undefined> {
  if (prompt.startsWith('detect ')) return { task: 'detect', image, ...parseDetections(text, image) };
  if (!prompt.startsWith('segment ')) return undefined;
  if (!decoder) return { task: 'segment', image, ...parseSegmentation(text, image) };
  const { segments, skipped } = await decodeSegmentation(text, image, decoder);
  return {
    task: 'segment',
    image,
    segments: segments.map(({ mask, ...s }) => ({ ...s, area: maskArea(mask), mask: maskToRle(mask, image.width, image.height) })),
    skipped,
  };
}
