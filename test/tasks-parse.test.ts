import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  TaskError,
  answerPrompt,
  captionPrompt,
  detectPrompt,
  missingDecoderError,
  ocrPrompt,
  parseDetections,
  parseSegmentation,
  segmentPrompt,
} from '../lib/tasks/index.js';

const loc = (v: number) => `<loc${String(v).padStart(4, '0')}>`;
const seg = (v: number) => `<seg${String(v).padStart(3, '0')}>`;
/** The four location tokens of a box, in the model's order: ymin, xmin, ymax, xmax. */
const box = (ymin: number, xmin: number, ymax: number, xmax: number) => [ymin, xmin, ymax, xmax].map(loc).join('');
const codes16 = Array.from({ length: 16 }, (_, i) => (i * 37) % 128);
const segs = (codes: number[]) => codes.map(seg).join('');

function taskError(fn: () => unknown): TaskError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TaskError);
    return err as TaskError;
  }
  throw new Error('expected a TaskError');
}

describe('prompts', () => {
  it('builds the mix task prefixes', () => {
    expect(captionPrompt()).toBe('caption en');
    expect(captionPrompt({ lang: 'de', detail: 'short' })).toBe('caption de');
    expect(captionPrompt({ lang: 'fr', detail: 'long' })).toBe('describe fr');
    expect(captionPrompt({ detail: 'raw' })).toBe('cap en');
    expect(captionPrompt({ lang: 'pt-BR' })).toBe('caption pt-BR');
    expect(ocrPrompt()).toBe('ocr');
    expect(answerPrompt('  what is on the table? ')).toBe('answer en what is on the table?');
    expect(answerPrompt('wie viele?', 'de')).toBe('answer de wie viele?');
    expect(detectPrompt(['cat'])).toBe('detect cat');
    expect(detectPrompt([' cat ', 'red car', 'dog'])).toBe('detect cat ; red car ; dog');
    expect(segmentPrompt('  person ')).toBe('segment person');
    expect(segmentPrompt(['a', 'b'])).toBe('segment a ; b');
  });

  it('rejects bad labels, languages, questions and options with typed errors naming the problem', () => {
    expect(taskError(() => detectPrompt([])).code).toBe('BAD_LABEL');
    expect(taskError(() => detectPrompt(['cat', '  '])).message).toMatch(/label 1 is empty/);
    expect(taskError(() => detectPrompt(['cat\ndog'])).message).toMatch(/line break/);
    expect(taskError(() => detectPrompt(['cat;dog'])).message).toMatch(/';'/);
    expect(taskError(() => detectPrompt(['cat <loc0001>'])).message).toMatch(/special tokens/);
    expect(taskError(() => detectPrompt('cat' as unknown as string[])).code).toBe('BAD_LABEL');
    expect(taskError(() => detectPrompt([3 as unknown as string])).message).toMatch(/must be a string/);
    expect(taskError(() => segmentPrompt('')).code).toBe('BAD_LABEL');
    expect(taskError(() => segmentPrompt('a\r\nb')).code).toBe('BAD_LABEL');
    for (const lang of ['', 'EN', 'english', 'e', 'en us', 'en\n', 42])
      expect(taskError(() => captionPrompt({ lang: lang as string })).code).toBe('BAD_LANGUAGE');
    expect(taskError(() => answerPrompt('why?', 'x y')).code).toBe('BAD_LANGUAGE');
    expect(taskError(() => answerPrompt('   ')).code).toBe('BAD_QUESTION');
    expect(taskError(() => answerPrompt('one\ntwo')).code).toBe('BAD_QUESTION');
    expect(taskError(() => answerPrompt(undefined as unknown as string)).code).toBe('BAD_QUESTION');
    expect(taskError(() => captionPrompt({ detail: 'medium' as 'short' })).code).toBe('BAD_OPTION');
    expect(taskError(() => captionPrompt({ detail: 'toString' as 'short' })).code).toBe('BAD_OPTION');
  });

  it('says which file segmentation needs and how to pass it', () => {
    const err = missingDecoderError();
    expect(err.code).toBe('NO_SEGMENTATION_DECODER');
    expect(err.message).toContain('vae-oid.npz');
    expect(err.message).toContain("segmentation: 'vae-oid.npz'");
    expect(err.message).toContain('big_vision');
  });
});

describe('parseDetections', () => {
  it('maps loc bins to pixels of a non-square original image (y by height, x by width)', () => {
    // 640 × 480: x = v/1024 · 640, y = v/1024 · 480.
    const r = parseDetections(`${box(256, 128, 768, 896)} cat`, { width: 640, height: 480 });
    expect(r.skipped).toEqual([]);
    expect(r.detections).toEqual([{ label: 'cat', box: { x0: 80, y0: 120, x1: 560, y1: 360 } }]);
    const tall = parseDetections(`${box(512, 0, 1023, 512)} tower`, { width: 300, height: 2000 });
    expect(tall.detections[0]!.box).toEqual({ x0: 0, y0: 1000, x1: 150, y1: (1023 / 1024) * 2000 });
  });

  it('reads several objects separated by ";" and trims labels', () => {
    const text = `${box(0, 0, 512, 512)}   big dog  ; ${box(100, 200, 300, 400)} cat ;${box(10, 20, 30, 40)}cat`;
    const r = parseDetections(text, { width: 1024, height: 1024 });
    expect(r.skipped).toEqual([]);
    expect(r.detections).toEqual([
      { label: 'big dog', box: { x0: 0, y0: 0, x1: 512, y1: 512 } },
      { label: 'cat', box: { x0: 200, y0: 100, x1: 400, y1: 300 } },
      { label: 'cat', box: { x0: 20, y0: 10, x1: 40, y1: 30 } },
    ]);
  });

  it('orders swapped corners and keeps every box inside the image', () => {
    const r = parseDetections(`${box(900, 800, 100, 50)} x ; ${box(1023, 1023, 1023, 1023)} corner`, { width: 333, height: 77 });
    expect(r.detections[0]!.box).toEqual({ x0: (50 / 1024) * 333, y0: (100 / 1024) * 77, x1: (800 / 1024) * 333, y1: (900 / 1024) * 77 });
    const c = r.detections[1]!.box;
    expect(c.x0).toBe(c.x1);
    expect(c.x1).toBeLessThanOrEqual(333);
    expect(c.y1).toBeLessThanOrEqual(77);
  });

  it('skips and reports partial and malformed objects, keeping the good ones', () => {
    const good = `${box(0, 0, 1023, 1023)} whole`;
    const text = [
      `${loc(1)}${loc(2)} cut short`,
      good,
      'just words',
      `${box(1, 2, 3, 4)}${loc(5)} five`,
      `${loc(1)}${loc(2)}${loc(3)}${loc(1024)} beyond`,
      `${box(1, 2, 3, 4)} a ${loc(7)} b`,
      `${box(1, 2, 3, 4)} <loc12> odd`,
    ].join(' ; ');
    const r = parseDetections(text, { width: 10, height: 10 });
    expect(r.detections.map((d) => d.label)).toEqual(['whole']);
    expect(r.skipped.map((s) => s.reason)).toEqual([
      'expected 4 <loc> tokens, found 2',
      'no <loc> tokens',
      'expected 4 <loc> tokens, found 5',
      '<loc1024> is out of range (0..1023)',
      'a stray <loc0007> token inside the label',
      'a stray <loc12> token inside the label',
    ]);
    expect(r.skipped[0]!.text).toBe(`${loc(1)}${loc(2)} cut short`);
  });

  it('handles output cut off by maxTokens, empty output and stray separators', () => {
    expect(parseDetections('', { width: 5, height: 5 })).toEqual({ detections: [], skipped: [] });
    expect(parseDetections(' ; ;  ', { width: 5, height: 5 })).toEqual({ detections: [], skipped: [] });
    const r = parseDetections(`${box(0, 0, 512, 512)} cat ; ${loc(3)}${loc(4)}${loc(5)}`, { width: 1024, height: 1024 });
    expect(r.detections).toHaveLength(1);
    expect(r.skipped).toEqual([{ text: `${loc(3)}${loc(4)}${loc(5)}`, reason: 'expected 4 <loc> tokens, found 3' }]);
    // A box whose label was cut off entirely is still a box.
    expect(parseDetections(box(0, 0, 512, 512), { width: 8, height: 8 }).detections).toEqual([{ label: '', box: { x0: 0, y0: 0, x1: 4, y1: 4 } }]);
  });

  it('reads the boxes of segmentation output too', () => {
    const r = parseDetections(`${box(0, 0, 512, 512)}${segs(codes16)} cat`, { width: 1024, height: 1024 });
    expect(r.detections).toEqual([{ label: 'cat', box: { x0: 0, y0: 0, x1: 512, y1: 512 } }]);
  });

  it('throws only for bad arguments, never for the text', () => {
    expect(taskError(() => parseDetections('x', { width: 0, height: 10 })).code).toBe('BAD_OPTION');
    expect(taskError(() => parseDetections('x', { width: NaN, height: 10 })).code).toBe('BAD_OPTION');
    expect(taskError(() => parseDetections('x', undefined as unknown as { width: number; height: number })).code).toBe('BAD_OPTION');
    expect(taskError(() => parseDetections(null as unknown as string, { width: 1, height: 1 })).code).toBe('BAD_OPTION');
    // Any text: no throw, every box ordered and inside the image, every label trimmed and token-free.
    const piece = fc.oneof(
      fc.integer({ min: 0, max: 1100 }).map(loc),
      fc.integer({ min: 0, max: 140 }).map(seg),
      fc.constantFrom(';', ' ', ' ; ', 'cat', '<loc', '>', '\n'),
      fc.string({ maxLength: 4 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 5000 }), (parts, width, height) => {
        const r = parseDetections(parts.join(''), { width, height });
        for (const { label, box: b } of r.detections) {
          expect(0 <= b.x0 && b.x0 <= b.x1 && b.x1 <= width && 0 <= b.y0 && b.y0 <= b.y1 && b.y1 <= height).toBe(true);
          expect(label).toBe(label.trim());
          expect(label).not.toMatch(/<(loc|seg)\d*>/);
        }
        for (const s of r.skipped) expect(s.reason.length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseSegmentation', () => {
  it('reads box, 16 codes and label per object', () => {
    const other = codes16.map((c) => 127 - c);
    const text = `${box(256, 0, 768, 1023)}${segs(codes16)} left cat ; ${box(0, 512, 1023, 1023)}${segs(other)} dog`;
    const r = parseSegmentation(text, { width: 2048, height: 512 });
    expect(r.skipped).toEqual([]);
    expect(r.segments).toEqual([
      { label: 'left cat', box: { x0: 0, y0: 128, x1: (1023 / 1024) * 2048, y1: 384 }, codes: codes16 },
      { label: 'dog', box: { x0: 1024, y0: 0, x1: (1023 / 1024) * 2048, y1: (1023 / 1024) * 512 }, codes: other },
    ]);
  });

  it('skips objects with missing, extra or out-of-range codes', () => {
    const text = [
      `${box(1, 2, 3, 4)}${segs(codes16.slice(0, 15))} short`,
      `${box(1, 2, 3, 4)}${segs([...codes16, 5])} long`,
      `${box(1, 2, 3, 4)}${segs([...codes16.slice(0, 15), 128])} range`,
      `${box(1, 2, 3, 4)} nocodes`,
      `${loc(1)}${segs(codes16)} onebox`,
      `${box(1, 2, 3, 4)}${segs(codes16)} fine`,
    ].join(';');
    const r = parseSegmentation(text, { width: 100, height: 100 });
    expect(r.segments.map((s) => s.label)).toEqual(['fine']);
    expect(r.skipped.map((s) => s.reason)).toEqual([
      'expected 16 <seg> tokens, found 15',
      'expected 16 <seg> tokens, found 17',
      '<seg128> is out of range (0..127)',
      'expected 16 <seg> tokens, found 0',
      'expected 4 <loc> tokens, found 1',
    ]);
  });
});
