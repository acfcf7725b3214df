import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { native } from '../lib/native.js';
import {
  decodeImage,
  DEFAULT_MAX_PIXELS,
  ImageError,
  normalize,
  preprocess,
  resizeBicubic,
  type ImageErrorCode,
} from '../lib/image/index.js';
import {
  compareBytes,
  goldenBytes,
  goldenF32,
  goldenImages,
  pillowOverWhite,
  pngWithDeclaredSize,
  randomBytes,
  referenceResizeFixedPoint,
  referenceResizeFloat64,
} from './helpers/images.js';

/** Awaits `p` and checks it failed with an ImageError of `code`. */
async function expectImageError(p: Promise<unknown>, code: ImageErrorCode): Promise<ImageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ImageError ${code}`).toBeInstanceOf(ImageError);
  expect((err as ImageError).code).toBe(code);
  return err as ImageError;
}

/** Reinterprets float32 values as their bit patterns, for bit-exact comparison. */
const bits = (f: Float32Array) => new Uint32Array(f.buffer, f.byteOffset, f.length);

/** sharp input options for raw RGB bytes. */
const rawRgb = (width: number, height: number) => ({ raw: { width, height, channels: 3 as const } });

describe('golden images (HF transformers 4.44.2 + PIL)', () => {
  const images = goldenImages();
  const SIZE = 56; // the tiny fixture's image size (manifest: pixel_values [3, 56, 56])

  for (const [file, info] of Object.entries(images)) {
    const stem = file.replace(/\.(png|jpg)$/, '');
    const [w, h] = info.source_size_wh;
    const decodedGolden = goldenBytes(`${stem}.decoded_rgb_u8.bin`);
    const resizedGolden = goldenBytes(`${stem}.resized_rgb_u8.bin`);
    const pixelsGolden = goldenF32(`${stem}.pixel_values.f32.bin`);

    it(`${file}: decodes to exactly the reference RGB`, async () => {
      const rgb = await decodeImage(goldenBytes(file));
      expect([rgb.width, rgb.height]).toEqual([w, h]);
      // Exact for the JPEG too: sharp's libjpeg (mozjpeg, a libjpeg-turbo fork) and PIL's libjpeg-turbo
      // run the same default IDCT and fancy upsampling. Measured: max diff 0 for both files.
      expect(compareBytes(rgb.data, decodedGolden)).toEqual({ maxDiff: 0, differing: 0 });
    });

    it(`${file}: resize of the reference RGB matches PIL's resized_rgb_u8`, async () => {
      const out = await resizeBicubic({ data: decodedGolden, width: w, height: h, channels: 3 }, SIZE, SIZE);
      const d = compareBytes(out.data, resizedGolden);
      // Brief allows ±1; the implementation reproduces PIL's fixed-point arithmetic, measured exact.
      expect(d.maxDiff).toBeLessThanOrEqual(1);
      expect(d).toEqual({ maxDiff: 0, differing: 0 });
    });

    it(`${file}: preprocess of the file matches pixel_values bit for bit where the u8 matches`, async () => {
      const r = await preprocess(goldenBytes(file), { size: SIZE });
      expect([r.width, r.height]).toEqual([w, h]);
      expect(r.pixelValues.length).toBe(3 * SIZE * SIZE);
      const got = bits(r.pixelValues);
      const want = bits(pixelsGolden);
      let compared = 0;
      for (let c = 0; c < 3; c++)
        for (let i = 0; i < SIZE * SIZE; i++) {
          if (r.resized[i * 3 + c] !== resizedGolden[i * 3 + c]) continue;
          compared++;
          if (got[c * SIZE * SIZE + i] !== want[c * SIZE * SIZE + i]) {
            const at = c * SIZE * SIZE + i;
            expect.fail(`pixel_values[${c}, ${i}] = ${r.pixelValues[at]}, golden ${pixelsGolden[at]}`);
          }
        }
      expect(compared).toBe(3 * SIZE * SIZE); // every resized byte matched, so every value was compared
    });

    it(`${file}: the reference RGB as raw pixels preprocesses exactly`, async () => {
      const r = await preprocess({ data: decodedGolden, width: w, height: h, channels: 3 }, { size: SIZE });
      expect(compareBytes(r.resized, resizedGolden)).toEqual({ maxDiff: 0, differing: 0 });
      expect(compareBytes(bits(r.pixelValues), bits(pixelsGolden)).differing).toBe(0);
    });
  }

  it('normalize alone turns the golden resized u8 into the golden pixel_values exactly', () => {
    for (const stem of ['img_a1', 'img_a2']) {
      const out = normalize(goldenBytes(`${stem}.resized_rgb_u8.bin`), SIZE, SIZE, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]);
      expect(compareBytes(bits(out), bits(goldenF32(`${stem}.pixel_values.f32.bin`))).differing).toBe(0);
    }
  });
});

describe('resize against independent references of PIL bicubic', () => {
  const cases: Array<[string, number, number, number, number, number]> = [
    // name, width, height, channels, outWidth, outHeight
    ['upscale', 23, 17, 3, 61, 50],
    ['downscale x3.7', 370, 259, 3, 100, 70],
    ['non-square to square', 97, 61, 3, 56, 56],
    ['down in x, up in y', 64, 48, 3, 30, 90],
    ['height only', 80, 60, 3, 80, 33],
    ['width only', 80, 60, 3, 41, 60],
    ['1x1 to 224', 1, 1, 3, 224, 224],
    ['grey', 50, 40, 1, 17, 23],
    ['grey+alpha', 31, 29, 2, 64, 10],
    ['rgba', 45, 45, 4, 12, 12],
    ['identity copy', 33, 21, 3, 33, 21],
  ];
  // Random noise is the hardest input: large overshoots exercise clipping, and every rounding
  // boundary is hit often.
  for (const [name, w, h, c, ow, oh] of cases) {
    it(`${name}: ${w}x${h}x${c} -> ${ow}x${oh}`, async () => {
      const src = randomBytes(w * h * c, w * 7919 + h * 31 + c);
      const out = await resizeBicubic({ data: src, width: w, height: h, channels: c }, ow, oh);
      expect([out.width, out.height, out.channels, out.data.length]).toEqual([ow, oh, c, ow * oh * c]);
      // Bit-exact against a JS port of PIL's fixed-point arithmetic.
      expect(compareBytes(out.data, referenceResizeFixedPoint(src, w, h, c, ow, oh)).maxDiff).toBe(0);
      // ±1 against exact float64 weights: 22-bit weights move each pass's sum by < 2^-13 of a level,
      // which flips a rounding only when the exact sum lies that close to a .5 boundary; a flipped
      // intermediate byte moves the second pass by at most one weight (< 1 level).
      expect(compareBytes(out.data, referenceResizeFloat64(src, w, h, c, ow, oh)).maxDiff).toBeLessThanOrEqual(1);
    });
  }

  it('leaves the input untouched and returns a copy for an unchanged size', async () => {
    const src = randomBytes(10 * 10 * 3, 5);
    const before = src.slice();
    const out = await resizeBicubic({ data: src, width: 10, height: 10, channels: 3 }, 10, 10);
    expect(out.data).toEqual(before);
    expect(out.data).not.toBe(src);
    expect(src).toEqual(before);
  });

  it('runs concurrently off the JS thread with the same results', async () => {
    const src = randomBytes(300 * 200 * 3, 11);
    expect(native.resizeRgb(src, 300, 200, 3, 224, 224)).toBeInstanceOf(Promise);
    const outs = await Promise.all(
      Array.from({ length: 8 }, () => resizeBicubic({ data: src, width: 300, height: 200, channels: 3 }, 224, 224)),
    );
    for (const o of outs) expect(compareBytes(o.data, outs[0]!.data).differing).toBe(0);
  });

  it('the native binding rejects bad arguments with JS exceptions', () => {
    const resize = native.resizeRgb as (...args: unknown[]) => Promise<Uint8Array>; // called with bad arguments on purpose
    const ok = new Uint8Array(4 * 3 * 3);
    expect(() => resize(ok, 4, 3, 3, 2, 2)).not.toThrow();
    expect(() => resize(new Float32Array(36), 4, 3, 3, 2, 2)).toThrow(TypeError);
    expect(() => resize([1, 2, 3], 1, 1, 3, 2, 2)).toThrow(TypeError);
    expect(() => resize(ok, 4, 3, 3, 2)).toThrow(TypeError); // missing outHeight
    expect(() => resize(ok, '4', 3, 3, 2, 2)).toThrow(TypeError);
    expect(() => resize(ok, 5, 3, 3, 2, 2)).toThrow(RangeError); // length mismatch (too short)
    expect(() => resize(ok, 2, 3, 3, 2, 2)).toThrow(RangeError); // length mismatch (too long)
    expect(() => resize(ok, 4, 3, 0, 2, 2)).toThrow(RangeError);
    expect(() => resize(ok, 4, 3, 5, 2, 2)).toThrow(RangeError);
    expect(() => resize(ok, 0, 3, 3, 2, 2)).toThrow(RangeError);
    expect(() => resize(ok, 4, 3, 3, 0, 2)).toThrow(RangeError);
    expect(() => resize(ok, 4, 3, 3, 2, -1)).toThrow(RangeError);
    expect(() => resize(ok, 4, 3, 3, 2.5, 2)).toThrow(RangeError);
    expect(() => resize(ok, 4, 3, 3, NaN, 2)).toThrow(RangeError);
    expect(() => resize(ok, 4, 3, 3, 2 ** 21, 2)).toThrow(RangeError); // side over 2^20
    expect(() => resize(ok, 4, 3, 3, 2 ** 20, 2 ** 20)).toThrow(/2 GiB/); // output too large
  });

  it('resizeBicubic rejects bad output sizes with ImageError', async () => {
    const src = { data: new Uint8Array(3), width: 1, height: 1, channels: 3 };
    await expectImageError(resizeBicubic(src, 0, 5), 'BAD_OPTION');
    await expectImageError(resizeBicubic(src, 5, 1.5), 'BAD_OPTION');
  });
});

describe('decoding: formats and conversions', () => {
  // 16×8 with four solid 8×4 quadrants keeps lossy codecs close to the source colours.
  const quadrants = (() => {
    const w = 16;
    const h = 8;
    const colours = [
      [220, 30, 40],
      [30, 200, 60],
      [40, 50, 210],
      [240, 240, 240],
    ];
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) data.set(colours[(y < h / 2 ? 0 : 2) + (x < w / 2 ? 0 : 1)]!, (y * w + x) * 3);
    return { data, w, h };
  })();
  const encode = (fmt: (s: sharp.Sharp) => sharp.Sharp) =>
    fmt(sharp(quadrants.data, rawRgb(quadrants.w, quadrants.h))).toBuffer();

  for (const [name, fmt, tolerance] of [
    ['PNG', (s: sharp.Sharp) => s.png(), 0],
    ['TIFF', (s: sharp.Sharp) => s.tiff({ compression: 'lzw' }), 0],
    ['WebP lossless', (s: sharp.Sharp) => s.webp({ lossless: true }), 0],
    // Lossy codecs at high quality on flat colours: a few levels of codec error (measured ≤ 10 with
    // chroma subsampling at quadrant edges); the check is that the image is right, not bit-exact.
    ['JPEG', (s: sharp.Sharp) => s.jpeg({ quality: 95, chromaSubsampling: '4:4:4' }), 12],
    ['AVIF', (s: sharp.Sharp) => s.avif({ quality: 90, chromaSubsampling: '4:4:4' }), 12],
  ] as const) {
    it(`${name} decodes to RGB`, async () => {
      const rgb = await decodeImage(await encode(fmt));
      expect([rgb.width, rgb.height, rgb.data.length]).toEqual([quadrants.w, quadrants.h, quadrants.w * quadrants.h * 3]);
      expect(compareBytes(rgb.data, quadrants.data).maxDiff).toBeLessThanOrEqual(tolerance);
    });
  }

  it('greyscale PNG is replicated to RGB', async () => {
    const grey = randomBytes(9 * 7, 3);
    const png = await sharp(grey, { raw: { width: 9, height: 7, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    expect((await sharp(png).metadata()).channels).toBe(1); // precondition: a 1-channel file
    const rgb = await decodeImage(png);
    const replicated = new Uint8Array(grey.length * 3).map((_, i) => grey[Math.floor(i / 3)]!);
    expect(compareBytes(rgb.data, replicated).differing).toBe(0);
  });

  it('16-bit PNG is reduced to 8 bits', async () => {
    const values = [65535, 32896, 300, 32767, 65000, 0, 2570, 49151, 12345];
    const png = await sharp(new Uint16Array(values), { raw: { width: 3, height: 1, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect((await sharp(png).metadata()).depth).toBe('ushort'); // precondition: really 16-bit
    const rgb = await decodeImage(png);
    // PIL keeps the high byte (v >> 8); sharp scales by 1/257: they differ by at most one level.
    for (let i = 0; i < values.length; i++) expect(Math.abs(rgb.data[i]! - (values[i]! >> 8))).toBeLessThanOrEqual(1);
  });

  it('CMYK JPEG is converted to RGB (not inverted)', async () => {
    const colour = [200, 100, 50];
    const src = new Uint8Array(16 * 16 * 3).map((_, i) => colour[i % 3]!);
    const jpeg = await sharp(src, rawRgb(16, 16)).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
    expect((await sharp(jpeg).metadata()).space).toBe('cmyk'); // precondition
    const rgb = await decodeImage(jpeg);
    expect(rgb.data.length).toBe(16 * 16 * 3);
    // sRGB → CMYK → sRGB through a print profile is lossy (gamut mapping): measured (198, 94, 35).
    // An inverted or naive decode would be off by ~100 levels.
    for (let i = 0; i < rgb.data.length; i++) expect(Math.abs(rgb.data[i]! - colour[i % 3]!)).toBeLessThanOrEqual(20);
  });

  it('animated GIF: the first frame is used', async () => {
    const frames = new Uint8Array(4 * 4 * 3 * 4);
    for (let f = 0; f < 3; f++)
      for (let i = 0; i < 16; i++) frames.set([f === 0 ? 255 : 0, f === 1 ? 255 : 0, f === 2 ? 255 : 0, 255], (f * 16 + i) * 4);
    // Frames stacked vertically, split into pages of 4 rows: frame 0 red, 1 green, 2 blue.
    const gif = await sharp(frames, { raw: { width: 4, height: 12, channels: 4, pageHeight: 4 } }).gif().toBuffer();
    const meta = await sharp(gif).metadata();
    expect([meta.pages, meta.width, meta.height]).toEqual([3, 4, 4]); // precondition: 3 frames of 4×4
    const rgb = await decodeImage(gif);
    expect([rgb.width, rgb.height]).toEqual([4, 4]);
    for (let i = 0; i < 16; i++) expect([...rgb.data.subarray(i * 3, i * 3 + 3)]).toEqual([255, 0, 0]);
  });

  it('EXIF orientation 6 is applied (rotated 90° clockwise)', async () => {
    // 40×20: top-left red, top-right green, bottom-left blue, bottom-right white.
    const w = 40;
    const h = 20;
    const src = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const q = (y < h / 2 ? 0 : 2) + (x < w / 2 ? 0 : 1);
        src.set([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]][q]!, (y * w + x) * 3);
      }
    const jpeg = await sharp(src, rawRgb(w, h)).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6); // precondition
    const rgb = await decodeImage(jpeg);
    expect([rgb.width, rgb.height]).toEqual([20, 40]);
    const at = (x: number, y: number) => [...rgb.data.subarray((y * 20 + x) * 3, (y * 20 + x) * 3 + 3)];
    // Saturated colours at JPEG quality 95: block centres are within a few levels; 30 leaves room.
    const near = (got: number[], want: number[]) => got.every((v, i) => Math.abs(v - want[i]!) <= 30);
    // Clockwise: the old bottom-left comes to the top-left, the old top-left to the top-right.
    expect(near(at(5, 10), [0, 0, 255]), `top-left ${at(5, 10)}`).toBe(true);
    expect(near(at(15, 10), [255, 0, 0]), `top-right ${at(15, 10)}`).toBe(true);
    expect(near(at(5, 30), [255, 255, 255]), `bottom-left ${at(5, 30)}`).toBe(true);
    expect(near(at(15, 30), [0, 255, 0]), `bottom-right ${at(15, 30)}`).toBe(true);
    // preprocess reports the oriented size (what detection boxes map back to).
    const r = await preprocess(jpeg, { size: 8 });
    expect([r.width, r.height]).toEqual([20, 40]);
  });

  it('alpha PNG is composited onto white exactly as Pillow alpha_composite does', async () => {
    // Every (value, alpha) pair: R = value, G = 255 − value, B = 128, A = alpha.
    const rgba = new Uint8Array(256 * 256 * 4);
    for (let a = 0; a < 256; a++)
      for (let v = 0; v < 256; v++) rgba.set([v, 255 - v, 128, a], (a * 256 + v) * 4);
    const png = await sharp(rgba, { raw: { width: 256, height: 256, channels: 4 } }).png().toBuffer();
    for (const input of [png, { data: rgba, width: 256, height: 256, channels: 4 }]) {
      const rgb = await decodeImage(input);
      for (let a = 0; a < 256; a++)
        for (let v = 0; v < 256; v++) {
          const o = (a * 256 + v) * 3;
          const want = [pillowOverWhite(v, a), pillowOverWhite(255 - v, a), pillowOverWhite(128, a)];
          if (rgb.data[o] !== want[0] || rgb.data[o + 1] !== want[1] || rgb.data[o + 2] !== want[2]) {
            expect.fail(`v=${v} a=${a}: got ${[...rgb.data.subarray(o, o + 3)]}, want ${want}`);
          }
        }
    }
  });

  it('grey + alpha raw pixels are replicated and composited', async () => {
    const rgb = await decodeImage({ data: new Uint8Array([0, 255, 0, 0, 100, 128]), width: 3, height: 1, channels: 2 });
    const g = pillowOverWhite(100, 128);
    expect([...rgb.data]).toEqual([0, 0, 0, 255, 255, 255, g, g, g]);
  });

  it('raw RGB pixels are copied, not aliased; Uint8ClampedArray is accepted', async () => {
    const data = new Uint8Array([1, 2, 3, 4, 5, 6]);
    const rgb = await decodeImage({ data, width: 2, height: 1, channels: 3 });
    expect(rgb.data).toEqual(data);
    expect(rgb.data).not.toBe(data);
    const clamped = await decodeImage({ data: new Uint8ClampedArray([9, 8, 7]), width: 1, height: 1, channels: 3 });
    expect([...clamped.data]).toEqual([9, 8, 7]);
  });
});

describe('extreme sizes', () => {
  it('1×1 image preprocesses to a constant 224×224', async () => {
    const png = await sharp(new Uint8Array([10, 128, 250]), { raw: { width: 1, height: 1, channels: 3 } }).png().toBuffer();
    const r = await preprocess(png, { size: 224 });
    expect([r.width, r.height]).toEqual([1, 1]);
    const constant = new Uint8Array(224 * 224 * 3).map((_, i) => [10, 128, 250][i % 3]!);
    expect(compareBytes(r.resized, constant).differing).toBe(0);
    // (v/255 − 0.5)/0.5 in float32 for v = 10, 128, 250, planes in CHW order.
    const f = (v: number) => Math.fround(Math.fround(Math.fround(v / 255) - 0.5) / 0.5);
    expect([r.pixelValues[0], r.pixelValues[224 * 224], r.pixelValues[2 * 224 * 224]]).toEqual([f(10), f(128), f(250)]);
  });

  it('20000×20 image decodes and resizes to 224×224 exactly as the reference', async () => {
    const w = 20000;
    const h = 20;
    const src = randomBytes(w * h * 3, 99);
    const png = await sharp(src, rawRgb(w, h)).png({ compressionLevel: 1 }).toBuffer();
    const r = await preprocess(png, { size: 224 });
    expect([r.width, r.height]).toEqual([w, h]);
    expect(compareBytes(r.resized, referenceResizeFixedPoint(src, w, h, 3, 224, 224)).maxDiff).toBe(0);
  });
});

describe('hostile and invalid input', () => {
  it('zero bytes → EMPTY', async () => {
    await expectImageError(decodeImage(new Uint8Array(0)), 'EMPTY');
    await expectImageError(preprocess(Buffer.alloc(0), { size: 8 }), 'EMPTY');
  });

  it('non-image bytes → UNSUPPORTED_FORMAT', async () => {
    await expectImageError(decodeImage(Buffer.from('this is plainly not an image, just some text')), 'UNSUPPORTED_FORMAT');
    await expectImageError(decodeImage(randomBytes(1000, 42)), 'UNSUPPORTED_FORMAT');
  });

  it('SVG (readable by sharp, but not a photo format) → UNSUPPORTED_FORMAT', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    await expectImageError(decodeImage(svg), 'UNSUPPORTED_FORMAT');
  });

  it('truncated JPEG and PNG → CORRUPT (at every tenth of the file)', async () => {
    const src = randomBytes(32 * 32 * 3, 7);
    const files = {
      jpeg: await sharp(src, rawRgb(32, 32)).jpeg().toBuffer(),
      png: await sharp(src, rawRgb(32, 32)).png().toBuffer(),
    };
    for (const [name, file] of Object.entries(files)) {
      for (let tenth = 1; tenth < 10; tenth++) {
        const cut = Math.floor((file.length * tenth) / 10);
        const err = await decodeImage(file.subarray(0, cut)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `${name} cut at ${cut}/${file.length}`).toBeInstanceOf(ImageError);
        // A cut inside the signature can leave bytes sharp does not recognise at all.
        expect(['CORRUPT', 'UNSUPPORTED_FORMAT'], `${name} cut at ${cut}`).toContain((err as ImageError).code);
      }
      await expectImageError(decodeImage(file.subarray(0, file.length - 20)), 'CORRUPT');
    }
  });

  it('decompression bomb: a tiny PNG declaring 30000×30000 → TOO_LARGE before decoding', async () => {
    const tiny = await sharp(new Uint8Array(3), { raw: { width: 1, height: 1, channels: 3 } }).png().toBuffer();
    const bomb = pngWithDeclaredSize(tiny, 30000, 30000);
    expect(bomb.length).toBeLessThan(200);
    const err = await expectImageError(decodeImage(bomb), 'TOO_LARGE');
    expect(err.message).toMatch(/30000x30000/);
    expect(err.message).toContain(String(DEFAULT_MAX_PIXELS));
  });

  it('maxPixels is configurable', async () => {
    const png = await sharp(new Uint8Array(64 * 64 * 3), { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
    await expectImageError(decodeImage(png, { maxPixels: 64 * 64 - 1 }), 'TOO_LARGE');
    await expect(decodeImage(png, { maxPixels: 64 * 64 })).resolves.toMatchObject({ width: 64, height: 64 });
    await expectImageError(preprocess(png, { size: 8, maxPixels: 100 }), 'TOO_LARGE');
    await expectImageError(decodeImage({ data: new Uint8Array(30), width: 10, height: 1, channels: 3 }, { maxPixels: 9 }), 'TOO_LARGE');
    // A raw-pixel bomb is refused on its declared size, before its (short) data is looked at.
    await expectImageError(decodeImage({ data: new Uint8Array(3), width: 1e5, height: 1e5, channels: 3 }), 'TOO_LARGE');
    for (const bad of [0, -1, 1.5, NaN]) await expectImageError(decodeImage(png, { maxPixels: bad }), 'BAD_OPTION');
  });

  it('inconsistent raw pixels → BAD_PIXELS', async () => {
    const ok = { data: new Uint8Array(12), width: 2, height: 2, channels: 3 };
    await expect(decodeImage(ok)).resolves.toBeDefined();
    for (const bad of [
      { ...ok, data: new Uint8Array(11) },
      { ...ok, data: new Uint8Array(13) },
      { ...ok, channels: 5 },
      { ...ok, channels: 0 },
      { ...ok, width: 0 },
      { ...ok, height: -2 },
      { ...ok, width: 2.5 },
      { ...ok, width: NaN },
      { ...ok, data: new Float32Array(12) as unknown as Uint8Array },
      { ...ok, data: [1, 2, 3] as unknown as Uint8Array },
    ]) {
      await expectImageError(decodeImage(bad), 'BAD_PIXELS');
    }
  });

  it('none of the accepted forms → BAD_INPUT (paths, URLs and buffers: test/image-input.test.ts)', async () => {
    for (const bad of [42, null, undefined, true, {}, [1, 2, 3]]) {
      await expectImageError(decodeImage(bad as never), 'BAD_INPUT');
    }
  });

  it('bad preprocessing options → BAD_OPTION', async () => {
    const img = { data: new Uint8Array(3), width: 1, height: 1, channels: 3 };
    for (const bad of [
      { size: 0 },
      { size: 10.5 },
      { size: 5000 },
      { size: NaN },
      { size: 8, mean: [0.5, 0.5] },
      { size: 8, mean: [0.5, 0.5, NaN] },
      { size: 8, std: [0.5, 0, 0.5] },
      { size: 8, std: 'x' as unknown as number[] },
    ]) {
      await expectImageError(preprocess(img, bad), 'BAD_OPTION');
    }
  });

  it('custom mean/std follow the float32 reference arithmetic', async () => {
    const mean = [0.48145466, 0.4578275, 0.40821073];
    const std = [0.26862954, 0.26130258, 0.27577711];
    const r = await preprocess({ data: new Uint8Array([0, 77, 255]), width: 1, height: 1, channels: 3 }, { size: 1, mean, std });
    // numpy: (x_f32 − mean_f32) / std_f32, all float32.
    const want = [0, 77, 255].map((v, c) =>
      Math.fround(Math.fround(Math.fround(v * (1 / 255)) - Math.fround(mean[c]!)) / Math.fround(std[c]!)),
    );
    expect([...r.pixelValues]).toEqual(want);
  });
});
