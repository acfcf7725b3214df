/**
 * Seeded generator of varied test strings for tokenizer comparisons: English, other scripts, CJK, emoji, digits,
 * punctuation, code, long words, URLs, mixed whitespace.
 */

/** A deterministic uniform [0, 1) generator, so failures reproduce (the library's own). */
import { seededRandom as prng } from '../../lib/model/sampling.js';
export { prng };

const ENGLISH = (
  'the of and to in is was for that with as on by at from his her they this which be are an or had not but ' +
  'what all were when we there can more one would about so their if out up into time only new some could these ' +
  'two may first then do any like my now over such our man me even most made after also did many before must ' +
  'through back years where much your way well down should because each just those people how too little state ' +
  'good very make world still own see men work long get here between both life being under never day same another ' +
  'know while last might us great old year off come since against go came right used take three photograph ' +
  'cyclist umbrella skateboard refrigerator giraffe zebra microwave sandwich broccoli keyboard bicycle traffic ' +
  'internationalization antidisestablishmentarianism pneumonoultramicroscopic tokenizer SentencePiece Gemma'
).split(' ');

const WORDS_OTHER = (
  'Привет мир спасибо большое город улица Καλημέρα κόσμε ευχαριστώ مرحبا بالعالم شكرا שלום עולם תודה ' +
  'नमस्ते दुनिया धन्यवाद สวัสดี ขอบคุณ 안녕하세요 세계 감사합니다 こんにちは ありがとう カタカナ 東京都 ' +
  '你好 世界 谢谢 中华人民共和国 機械学習 Grüße Straße façade naïve coöperate Ærø Łódź Český İstanbul ' +
  'Tiếng Việt ጤና ይስጥልኝ Բարեւ გამარჯობა ཀུན་མཁྱེན། ᏣᎳᎩ'
).split(' ');

const PUNCT = [...'.,;:!?…—–-\'"“”‘’()[]{}«»/\\|@#$%^&*+=~`§¶•°±×÷'];

const CODE = [
  'function add(a, b) { return a + b; }',
  'for (let i = 0; i < n; i++) sum += xs[i];',
  'const x = await fetch(url).then((r) => r.json());',
  'def f(x):\n    return x ** 2',
  'if (p != NULL && p->next) { free(p); }',
  'SELECT id, name FROM users WHERE age >= 18;',
  '#include <stdio.h>',
  'printf("%d\\n", value);',
  'x = {"key": [1, 2.5, -3e10], "ok": true}',
  'git commit -m "fix: handle CRLF"',
  '$ npm run build && node dist/main.js --flag=3',
  'arr.map(v => v * 2).filter(Boolean)',
  '<div class="row">text</div>',
  'std::vector<int> v{1, 2, 3};',
  'fn main() -> Result<(), Box<dyn Error>> { Ok(()) }',
];

const EMOJI = ['😀', '👍🏽', '👨‍👩‍👧‍👦', '🇫🇷', '🇯🇵', '❤️', '🔥', '🙈', '🤖', '🧪', '✨', '🏳️‍🌈', '🦜', '🫠', '☕', '⚽'];

/** Code point ranges sampled for random characters, many of them outside the vocabulary (byte fallback). */
const RANGES: [number, number][] = [
  [0x21, 0x7e], // ASCII
  [0xa1, 0x17f], // Latin-1, Latin Extended-A
  [0x370, 0x3ff], // Greek
  [0x400, 0x4ff], // Cyrillic
  [0x590, 0x5ff], // Hebrew
  [0x600, 0x6ff], // Arabic
  [0x900, 0x97f], // Devanagari
  [0xe00, 0xe7f], // Thai
  [0x1100, 0x11ff], // Hangul Jamo
  [0x2000, 0x206f], // General punctuation (includes odd spaces)
  [0x2190, 0x22ff], // arrows, math
  [0x3040, 0x30ff], // kana
  [0x4e00, 0x9fff], // CJK
  [0xac00, 0xd7a3], // Hangul syllables
  [0xe000, 0xe0ff], // private use
  [0x1f300, 0x1faff], // emoji
  [0x20000, 0x2a6df], // CJK Extension B (mostly not in the vocabulary)
  [0x1d400, 0x1d7ff], // math alphanumerics
];

const SEPARATORS = [' ', ' ', ' ', ' ', ' ', '\n', '\t', '  ', ' \n', '\n\n', '\r\n', '   ', '\u00a0', '\u3000'];

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)];
}

function randomChar(rand: () => number): string {
  const [lo, hi] = pick(rand, RANGES);
  const cp = lo + Math.floor(rand() * (hi - lo + 1));
  // Surrogates and U+2581 (▁, which decodes as a space) are not round-trippable text.
  if ((cp >= 0xd800 && cp < 0xe000) || cp === 0x2581) return 'x';
  return String.fromCodePoint(cp);
}

function fragment(rand: () => number): string {
  const r = rand();
  if (r < 0.3) {
    const w = pick(rand, ENGLISH);
    const c = rand();
    return c < 0.15 ? w[0].toUpperCase() + w.slice(1) : c < 0.2 ? w.toUpperCase() : w;
  }
  if (r < 0.42) return pick(rand, WORDS_OTHER);
  if (r < 0.5) return String(Math.floor(rand() * 10 ** Math.floor(rand() * 12))) + (rand() < 0.3 ? '.' + Math.floor(rand() * 100) : '');
  if (r < 0.58) return pick(rand, PUNCT) + (rand() < 0.5 ? pick(rand, PUNCT) : '');
  if (r < 0.64) return pick(rand, CODE);
  if (r < 0.7) return pick(rand, EMOJI) + (rand() < 0.3 ? pick(rand, EMOJI) : '');
  if (r < 0.82) {
    let s = '';
    const n = 1 + Math.floor(rand() * 6);
    for (let i = 0; i < n; i++) s += randomChar(rand);
    return s;
  }
  if (r < 0.9) {
    // long made-up word
    let s = '';
    const n = 15 + Math.floor(rand() * 50);
    for (let i = 0; i < n; i++) s += String.fromCharCode(0x61 + Math.floor(rand() * 26));
    return s;
  }
  if (r < 0.95) return `https://example.com/${pick(rand, ENGLISH)}?q=${Math.floor(rand() * 1000)}&lang=${pick(rand, ['en', 'fr', 'ja'])}`;
  return pick(rand, ENGLISH) + pick(rand, ["'s", "n't", '-based', '_id', '2', 'ing']);
}

/** One varied string of 1..40 fragments joined by mostly single spaces. */
export function randomText(rand: () => number): string {
  const n = 1 + Math.floor(rand() * (rand() < 0.8 ? 12 : 40));
  let s = rand() < 0.1 ? pick(rand, SEPARATORS) : '';
  for (let i = 0; i < n; i++) {
    if (i > 0) s += rand() < 0.15 ? '' : pick(rand, SEPARATORS);
    s += fragment(rand);
  }
  if (rand() < 0.1) s += pick(rand, SEPARATORS);
  return s;
}

/** English-like prose: sentences of common words, capitalized, with commas and full stops. */
export function randomProse(rand: () => number, length: number): string {
  let s = '';
  while (s.length < length) {
    const words = 5 + Math.floor(rand() * 15);
    for (let i = 0; i < words; i++) {
      const w = pick(rand, ENGLISH);
      s += i === 0 ? w[0].toUpperCase() + w.slice(1) : ' ' + w;
      if (i > 0 && i < words - 1 && rand() < 0.08) s += ',';
    }
    s += '. ';
  }
  return s.slice(0, length);
}
