/**
 * Task prefixes of the PaliGemma mix checkpoints ("PaliGemma prompt and system instructions",
 * ai.google.dev): `cap|caption|describe {lang}`, `ocr`, `answer {lang} {question}`,
 * `detect {a} ; {b}`, `segment {a}`. The model class appends the `\n` that ends every prefix, so
 * none of these strings has one, and none may contain one.
 */
import { TaskError } from './errors.js';

/**
 * How much a caption says:
 * - `short` → `caption {lang}`: a COCO-like one-sentence caption (the mix models' main caption task);
 * - `long` → `describe {lang}`: a longer, more descriptive caption;
 * - `raw` → `cap {lang}`: a very raw short caption in the style of web alt-texts (WebLI-alt). The mix
 *   checkpoints answer it, but it is mostly useful with the pre-trained (pt) checkpoints.
 */
export type CaptionDetail = 'short' | 'long' | 'raw';

const CAPTION_PREFIX: Record<CaptionDetail, string> = { short: 'caption', long: 'describe', raw: 'cap' };

/** Options of {@link captionPrompt}. */
export interface CaptionOptions {
  /** Language of the caption (default `en`). */
  lang?: string;
  /** Default `short`. */
  detail?: CaptionDetail;
}

/**
 * A language code as PaliGemma's prompts use them (`en`, `de`, `zh`, `pt-BR`…): 2–3 lowercase letters,
 * optionally followed by `-subtags`. The list of languages the checkpoints were trained on changes with
 * the checkpoint, so codes are checked for shape, not against a list.
 */
const LANGUAGE = /^[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$/;
/** Tokens the model writes in its answers; in a prompt they would change what the model is asked. */
const SPECIAL_TOKEN = /<(?:loc\d{4}|seg\d{3}|image|bos|eos|pad)>/;
const LINE_BREAK = /[\r\n\u2028\u2029]/;

/** `caption {lang}`, `describe {lang}` or `cap {lang}` (see {@link CaptionDetail}). */
export function captionPrompt(options: CaptionOptions = {}): string {
  const detail = options.detail ?? 'short';
  if (!Object.hasOwn(CAPTION_PREFIX, detail))
    throw new TaskError('BAD_OPTION', `detail must be 'short', 'long' or 'raw', got ${JSON.stringify(detail)}`);
  return `${CAPTION_PREFIX[detail]} ${checkLanguage(options.lang ?? 'en')}`;
}

/** `ocr`: the text in the image. */
export function ocrPrompt(): string {
  return 'ocr';
}

/** `answer {lang} {question}`; the question is trimmed. */
export function answerPrompt(question: string, lang = 'en'): string {
  if (typeof question !== 'string') throw new TaskError('BAD_QUESTION', `the question must be a string, got ${typeof question}`);
  const q = question.trim();
  if (q === '') throw new TaskError('BAD_QUESTION', 'the question is empty');
  if (LINE_BREAK.test(q)) throw new TaskError('BAD_QUESTION', 'the question must be one line: a line break ends the prompt');
  return `answer ${checkLanguage(lang)} ${q}`;
}

/** `detect {a} ; {b} ; …`: boxes around every instance of each label. Labels are trimmed. */
export function detectPrompt(labels: readonly string[]): string {
  return `detect ${checkLabels(labels, 'detect').join(' ; ')}`;
}

/**
 * `segment {label}` (or several labels joined by ` ; `, which newer checkpoints accept): a box and
 * 16 mask codes per instance. Labels are trimmed.
 */
export function segmentPrompt(label: string | readonly string[]): string {
  return `segment ${checkLabels(typeof label === 'string' ? [label] : label, 'segment').join(' ; ')}`;
}

function checkLanguage(lang: unknown): string {
  if (typeof lang !== 'string' || !LANGUAGE.test(lang))
    throw new TaskError('BAD_LANGUAGE', `lang must be a language code such as 'en', 'de', 'zh' or 'pt-BR', got ${JSON.stringify(lang)}`);
  return lang;
}

function checkLabels(labels: unknown, task: string): string[] {
  if (!Array.isArray(labels)) throw new TaskError('BAD_LABEL', `${task}: labels must be an array of strings`);
  if (labels.length === 0) throw new TaskError('BAD_LABEL', `${task}: give at least one label`);
  return labels.map((label: unknown, i) => {
    const where = `${task}: label ${i}`;
    if (typeof label !== 'string') throw new TaskError('BAD_LABEL', `${where} must be a string, got ${typeof label}`);
    const l = label.trim();
    if (l === '') throw new TaskError('BAD_LABEL', `${where} is empty`);
    if (LINE_BREAK.test(l)) throw new TaskError('BAD_LABEL', `${where} (${JSON.stringify(l)}) must be one line: a line break ends the prompt`);
    if (l.includes(';')) throw new TaskError('BAD_LABEL', `${where} (${JSON.stringify(l)}) must not contain ';', which separates labels`);
    if (SPECIAL_TOKEN.test(l)) throw new TaskError('BAD_LABEL', `${where} (${JSON.stringify(l)}) must not contain special tokens such as <loc0000>`);
    return l;
  });
}
